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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), WorkerEnv+"=1"), w.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
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
	if err := <-started; err != nil {
		_ = logf.Close()
		return fmt.Errorf("%s: start: %w", w.name, err)
	}
	w.cmd, w.done, w.killed, w.termed = cmd, done, false, false
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
func (w *workerProc) term(grace time.Duration) bool {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	if cmd == nil {
		w.mu.Unlock()
		return false
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
