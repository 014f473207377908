package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/redact"
)

// RequireRuby fails (in CI) or skips the test unless ruby with Debian's Sidekiq 6.4.1 and
// ActiveJob can be loaded. It is Sidekiq6.Require.
func RequireRuby(tb testing.TB) {
	tb.Helper()
	Sidekiq6.Require(tb)
}

// RubyOption changes how Ruby runs a script.
type RubyOption interface{ applyRuby(*rubySettings) }

type rubySettings struct {
	activeJob bool
	env       []string
	timeout   time.Duration
}

type rubyOptionFunc func(*rubySettings)

func (f rubyOptionFunc) applyRuby(s *rubySettings) { f(s) }

// WithActiveJob also loads ActiveJob with the release's Sidekiq adapter (see
// RubySidekiq.LoadActiveJob).
func WithActiveJob() RubyOption { return rubyOptionFunc(func(s *rubySettings) { s.activeJob = true }) }

// WithEnv adds environment variables ("K=V") to the Ruby process.
func WithEnv(kv ...string) RubyOption {
	return rubyOptionFunc(func(s *rubySettings) { s.env = append(s.env, kv...) })
}

// WithTimeout bounds how long the script may run (default 60 s).
func WithTimeout(d time.Duration) RubyOption {
	return rubyOptionFunc(func(s *rubySettings) { s.timeout = d })
}

// Ruby runs script with Debian's Sidekiq 6.4.1 loaded; it is Sidekiq6.Ruby.
func Ruby(tb testing.TB, redisURL, script string, opts ...RubyOption) string {
	tb.Helper()
	return Sidekiq6.Ruby(tb, redisURL, script, opts...)
}

// RunRuby is Ruby without a test: it returns the error instead of failing. It is
// Sidekiq6.RunRuby.
func RunRuby(redisURL, script string, opts ...RubyOption) (string, error) {
	return Sidekiq6.RunRuby(redisURL, script, opts...)
}

// Ruby runs script with this release of Sidekiq loaded and configured for redisURL (the
// prelude's helpers are described at RubySidekiq), and returns what it printed on stdout.
// The test fails if the script exits non-zero (its stderr is in the message), and if the
// release is unavailable in CI (elsewhere it is skipped).
func (s *RubySidekiq) Ruby(tb testing.TB, redisURL, script string, opts ...RubyOption) string {
	tb.Helper()
	s.Require(tb)
	out, err := s.RunRuby(redisURL, script, opts...)
	if err != nil {
		tb.Fatalf("ruby (Sidekiq %s): %v", s.version, err)
	}
	return out
}

// RunRuby is Ruby without a test: it returns the error instead of failing.
func (s *RubySidekiq) RunRuby(redisURL, script string, opts ...RubyOption) (string, error) {
	st := rubySettings{timeout: 60 * time.Second}
	for _, o := range opts {
		o.applyRuby(&st)
	}
	if err := s.available(); err != nil {
		return "", fmt.Errorf("Sidekiq %s unavailable: %w", s.version, err)
	}
	if fs := s.forkServerFor(st.activeJob); fs != nil {
		stdout, stderr, status, err := fs.run(script, append([]string{"REDIS_URL=" + redisURL}, st.env...), st.timeout)
		// Ruby's messages may quote REDIS_URL (a connection error): mask its password.
		switch {
		case err == nil && status == 0:
			return stdout, nil
		case err == nil:
			return stdout, redact.Error(fmt.Errorf("exit status %d\nstderr:\n%s\nstdout:\n%s", status, stderr, stdout), redisURL)
		case !errors.Is(err, errForkNotSent):
			return stdout, redact.Error(fmt.Errorf("%w\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout), redisURL)
		}
		// The server was gone before the script was sent: run it on its own below.
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.timeout)
	defer cancel()
	name, args := s.command("-e", s.prelude(st.activeJob)+"\n"+script)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	cmd.Env = append(cmd.Env, st.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), redact.Error(fmt.Errorf("%w\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String()), redisURL)
	}
	return stdout.String(), nil
}

// SidekiqProcess is a running `sidekiq` binary started by StartSidekiq.
type SidekiqProcess struct {
	Cmd    *exec.Cmd
	stderr *SyncBuffer
	done   chan struct{}
	err    error
}

// StartSidekiq starts Debian's sidekiq 6.4.1 binary; it is Sidekiq6.StartSidekiq.
func StartSidekiq(tb testing.TB, redisURL, jobsRuby string, args ...string) *SidekiqProcess {
	tb.Helper()
	return Sidekiq6.StartSidekiq(tb, redisURL, jobsRuby, args...)
}

// StartSidekiq writes jobsRuby (Ruby defining the job classes; Sidekiq is already loaded,
// ActiveJob is not: start jobsRuby with LoadActiveJob for that) to a file and starts this
// release's `sidekiq -r <file>` with args (for example "-q", "default", "-c", "5") against
// redisURL. The process is stopped (TERM, then KILL) when the test ends.
func (s *RubySidekiq) StartSidekiq(tb testing.TB, redisURL, jobsRuby string, args ...string) *SidekiqProcess {
	tb.Helper()
	s.Require(tb)
	dir := tb.TempDir()
	file := filepath.Join(dir, "jobs.rb")
	if err := os.WriteFile(file, []byte(s.prelude(false)+"\n"+jobsRuby), 0o644); err != nil {
		tb.Fatal(err)
	}
	name, cargs := s.binary(append([]string{"-r", file, "-t", "5"}, args...)...)
	cmd := exec.Command(name, cargs...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	p := &SidekiqProcess{Cmd: cmd, stderr: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting sidekiq %s: %v", s.version, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Stop(10 * time.Second)
		if tb.Failed() {
			tb.Logf("sidekiq %s output:\n%s", s.version, tail(redact.String(p.Output(), redisURL), 4000))
		}
	})
	return p
}

// Output returns what the process has logged so far.
func (p *SidekiqProcess) Output() string { return p.stderr.String() }

// Done is closed when the process has exited.
func (p *SidekiqProcess) Done() <-chan struct{} { return p.done }

// Stop sends TERM and waits up to grace before KILL. It is safe to call more than once.
func (p *SidekiqProcess) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// RubyString quotes s as a Ruby string literal.
func RubyString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "#", `\#`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
