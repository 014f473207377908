package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/redact"
)

// rubyPrelude loads Sidekiq (and ActiveJob) and points both client and server at REDIS_URL.
// Logs go to stderr at WARN so a script's stdout holds only what it prints.
const rubyPrelude = `
$stdout.sync = true
require "json"
require "logger"
require "sidekiq"
require "sidekiq/api"
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.configure_server { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.logger = Logger.new($stderr)
Sidekiq.logger.level = Logger::WARN
if ENV["FERRY_ACTIVEJOB"] == "1"
  require "active_job"
  require "active_job/queue_adapters/sidekiq_adapter"
  ActiveJob::Base.queue_adapter = :sidekiq
  ActiveJob::Base.logger = Logger.new(nil)
end
`

var rubyCheck struct {
	once sync.Once
	err  error
}

// RequireRuby fails (in CI) or skips the test unless ruby with Sidekiq 6.x and ActiveJob
// can be loaded.
func RequireRuby(tb testing.TB) {
	tb.Helper()
	rubyCheck.once.Do(func() {
		if _, err := exec.LookPath("ruby"); err != nil {
			rubyCheck.err = fmt.Errorf("ruby not found (apt-get install ruby ruby-sidekiq ruby-activejob): %w", err)
			return
		}
		out, err := exec.Command("ruby", "-e", `require "sidekiq"; require "active_job"; print Sidekiq::VERSION`).CombinedOutput()
		if err != nil {
			rubyCheck.err = fmt.Errorf("ruby cannot load sidekiq and active_job: %v: %s", err, out)
		}
	})
	if rubyCheck.err != nil {
		Unavailable(tb, "%v", rubyCheck.err)
	}
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

// WithActiveJob also loads ActiveJob with the Sidekiq adapter.
func WithActiveJob() RubyOption { return rubyOptionFunc(func(s *rubySettings) { s.activeJob = true }) }

// WithEnv adds environment variables ("K=V") to the Ruby process.
func WithEnv(kv ...string) RubyOption {
	return rubyOptionFunc(func(s *rubySettings) { s.env = append(s.env, kv...) })
}

// WithTimeout bounds how long the script may run (default 60 s).
func WithTimeout(d time.Duration) RubyOption {
	return rubyOptionFunc(func(s *rubySettings) { s.timeout = d })
}

// Ruby runs script with Sidekiq loaded and configured for redisURL, and returns what it
// printed on stdout. The test fails if the script exits non-zero; its stderr is in the
// message.
func Ruby(tb testing.TB, redisURL, script string, opts ...RubyOption) string {
	tb.Helper()
	out, err := RunRuby(redisURL, script, opts...)
	if err != nil {
		tb.Fatalf("ruby: %v", err)
	}
	return out
}

// RunRuby is Ruby without a test: it returns the error instead of failing.
func RunRuby(redisURL, script string, opts ...RubyOption) (string, error) {
	s := rubySettings{timeout: 60 * time.Second}
	for _, o := range opts {
		o.applyRuby(&s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ruby", "-e", rubyPrelude+"\n"+script)
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	if s.activeJob {
		cmd.Env = append(cmd.Env, "FERRY_ACTIVEJOB=1")
	}
	cmd.Env = append(cmd.Env, s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// Ruby's messages may quote REDIS_URL (a connection error): mask its password.
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

// StartSidekiq writes jobsRuby (Ruby defining the job classes; Sidekiq is already loaded)
// to a file and starts `sidekiq -r <file>` with args (for example "-q", "default", "-c",
// "5") against redisURL. The process is stopped (TERM, then KILL) when the test ends.
func StartSidekiq(tb testing.TB, redisURL, jobsRuby string, args ...string) *SidekiqProcess {
	tb.Helper()
	RequireRuby(tb)
	bin, err := exec.LookPath("sidekiq")
	if err != nil {
		Unavailable(tb, "sidekiq binary not found: %v", err)
	}
	dir := tb.TempDir()
	file := filepath.Join(dir, "jobs.rb")
	if err := os.WriteFile(file, []byte(rubyPrelude+"\n"+jobsRuby), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"-r", file, "-t", "5"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	p := &SidekiqProcess{Cmd: cmd, stderr: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting sidekiq: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Stop(10 * time.Second)
		if tb.Failed() {
			tb.Logf("sidekiq output:\n%s", tail(redact.String(p.Output(), redisURL), 4000))
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
