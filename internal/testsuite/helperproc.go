package testsuite

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// HelperProcess is the test binary run again as a child process to run one helper test (a
// TestHelper... function that does its work only when its environment asks for it), so
// that the parent can SIGKILL it at a chosen moment.
type HelperProcess struct {
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
}

// StartHelperProcess runs the test named test in a new process of the test binary with env
// added to the environment, capturing its output. At cleanup the process is killed if it
// still runs and, when the test failed, its output is logged under name.
func StartHelperProcess(tb testing.TB, name, test string, env ...string) *HelperProcess {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), env...)
	p := &HelperProcess{cmd: cmd, out: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting the %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if tb.Failed() {
			tb.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// Kill sends SIGKILL and waits until the process has exited.
func (p *HelperProcess) Kill(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	<-p.done
}
