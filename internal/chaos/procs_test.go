package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// workerProc is one slot of the Go worker fleet: a chaos worker process that the fault
// schedule kills, stops and starts again. Every exit is checked against what the suite
// did to it.
type workerProc struct {
	t    *testing.T
	name string
	env  []string
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has been reaped
	ready   chan struct{} // closed when the current process has its SIGTERM handler
	killed  bool          // the suite sent the current process SIGKILL
	termed  bool          // the suite sent the current process SIGTERM
	stopErr int           // exits with ExitShutdownError after SIGTERM
	starts  int
	crashes []string // exits the suite did not cause
}

func newWorkerProc(t *testing.T, name string, env []string) *workerProc {
	return &workerProc{t: t, name: name, env: env, dir: t.TempDir()}
}

// start runs a new worker process in the slot; the slot must be empty.
func (w *workerProc) start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil {
		return fmt.Errorf("%s: already running", w.name)
	}
	w.starts++
	logf, err := os.Create(filepath.Join(w.dir, "worker-"+strconv.Itoa(w.starts)+".log"))
	if err != nil {
		return err
	}
	// The worker writes a byte to this pipe once its SIGTERM handler is installed (see
	// term). The write end is the child's fd 3; the parent's copy is closed after Start,
	// so the read ends at the child's exit if it never says it is ready.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		_ = logf.Close()
		return err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), WorkerEnv+"=1", envReadyFD+"=3"), w.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readyW}
	// A worker dies with the test process (a timeout, a panic) instead of running on
	// as an orphan. Pdeathsig follows the thread that started the child, so that thread
	// stays locked to the goroutine that waits for it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		_ = logf.Close()
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case err == nil:
		case w.killed && isSignal(err, syscall.SIGKILL):
		case w.termed && exitCode(err) == ExitShutdownError:
			w.stopErr++
		default:
			w.crashes = append(w.crashes, fmt.Sprintf("%s: %v; log %s:\n%s", w.name, err, logf.Name(), fileTail(logf.Name(), 3000)))
		}
		w.cmd = nil
		close(done)
	}()
	err = <-started
	_ = readyW.Close()
	if err != nil {
		_ = readyR.Close()
		_ = logf.Close()
		return fmt.Errorf("%s: start: %w", w.name, err)
	}
	ready := make(chan struct{})
	go func() {
		defer readyR.Close()
		var b [1]byte
		if n, _ := readyR.Read(b[:]); n == 1 {
			close(ready)
		}
	}()
	w.cmd, w.done, w.ready, w.killed, w.termed = cmd, done, ready, false, false
	return nil
}

// running reports whether the slot has a live process.
func (w *workerProc) running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cmd != nil
}

// kill sends SIGKILL and waits for the process to be reaped. It reports whether there was
// a process to kill.
func (w *workerProc) kill() bool {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	if cmd == nil {
		w.mu.Unlock()
		return false
	}
	w.killed = true
	_ = cmd.Process.Signal(syscall.SIGKILL)
	w.mu.Unlock()
	<-done
	return true
}

// term sends SIGTERM and waits up to grace for a clean exit, then kills. It reports
// whether there was a process to stop.
//
// The signal is sent only once the process has said that its handler is installed (the
// ready pipe): before that, SIGTERM has its default effect and the process dies of it, an
// exit that proves nothing about graceful shutdown and that the suite would count as a
// crash. A process that does not get ready within grace is a failure too (a hung start);
// one that exits before it is ready has its exit judged as if no signal had been sent.
func (w *workerProc) term(grace time.Duration) bool {
	w.mu.Lock()
	cmd, done, ready := w.cmd, w.done, w.ready
	w.mu.Unlock()
	if cmd == nil {
		return false
	}
	select {
	case <-ready:
	case <-done:
		return true
	case <-time.After(grace):
		w.mu.Lock()
		w.crashes = append(w.crashes, fmt.Sprintf("%s: not ready for SIGTERM %v after its start", w.name, grace))
		w.mu.Unlock()
		w.kill()
		return true
	}
	w.mu.Lock()
	if w.cmd != cmd {
		w.mu.Unlock() // it exited meanwhile, on its own: the waiter judged that exit
		return true
	}
	w.termed = true
	_ = cmd.Process.Signal(syscall.SIGTERM)
	w.mu.Unlock()
	select {
	case <-done:
	case <-time.After(grace):
		w.mu.Lock()
		w.crashes = append(w.crashes, fmt.Sprintf("%s: no exit %v after SIGTERM", w.name, grace))
		w.mu.Unlock()
		w.kill()
	}
	return true
}

// unexpected returns the exits the suite did not cause (crashes, non-zero exits after
// SIGTERM, hangs).
func (w *workerProc) unexpected() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.crashes...)
}

// shutdownErrors returns how many processes of the slot exited with ExitShutdownError
// after SIGTERM.
func (w *workerProc) shutdownErrors() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopErr
}

func fileTail(name string, n int) string {
	b, _ := os.ReadFile(name)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func exitCode(err error) int {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return -1
	}
	return ee.ExitCode()
}

func isSignal(err error, sig syscall.Signal) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
