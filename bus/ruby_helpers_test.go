package bus_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
)

// The Ruby side of the interop tests: Debian's ruby with queue-bus 0.13.3 and sidekiq-bus
// from ../shared/peers (beside the project root), through its ruby-with script:
//
//	bus6: Debian's Sidekiq 6.4.1 with sidekiq-bus 1.1.0
//	bus7: Sidekiq 7.3.10 with sidekiq-bus 3.0.0
//
// Missing Ruby or peers skip the tests, and fail them under CI=true.

// rubyBus is one Ruby bus version.
type rubyBus struct {
	Name    string // ruby-with's set: bus6 or bus7
	Sidekiq string // the Sidekiq version it runs
}

var rubyBuses = []rubyBus{{Name: "bus6", Sidekiq: "6.4.1"}, {Name: "bus7", Sidekiq: "7.3.10"}}

// busPrelude loads Sidekiq and sidekiq-bus and points them at REDIS_URL; sidekiq-bus 3.x
// needs its own Redis handler (redis-rb 4.8, Debian's). On Sidekiq 6, queue-bus uses
// Sidekiq's connection (redis-rb) itself. Logs go to stderr at WARN.
const busPrelude = `
$stdout.sync = true
require "json"
require "logger"
require "redis"
Redis.sadd_returns_boolean = false if Redis.respond_to?(:sadd_returns_boolean=)
require "connection_pool"
require "sidekiq"
require "sidekiq/api"
require "sidekiq-bus"
BUS_URL = ENV.fetch("REDIS_URL")
# Generous timeouts: on a loaded machine a timed-out call that Redis did run would make
# Sidekiq retry a job that succeeded, and the tests count deliveries exactly.
Sidekiq.configure_client { |c| c.redis = { url: BUS_URL, network_timeout: 20 } }
Sidekiq.configure_server do |c|
  c.redis = { url: BUS_URL, network_timeout: 20 }
  if c.respond_to?(:[]=)
    c[:average_scheduled_poll_interval] = 1
  else
    Sidekiq.options[:average_scheduled_poll_interval] = 1
  end
end
if SidekiqBus.respond_to?(:redis_handler=)
  BUS_POOL = ConnectionPool.new(size: 12) { Redis.new(url: BUS_URL, timeout: 20) }
  SidekiqBus.redis_handler = ->(&b) { BUS_POOL.with { |r| b.call(r) } }
end
Sidekiq.logger.level = Logger::WARN
QueueBus.hostname = "ruby-host"

# Records an event a Ruby subscriber received, for the Go test to read.
def bus_record(app, sub, attrs)
  QueueBus.redis { |r| r.rpush("rubygot:#{app}/#{sub}", JSON.generate(attrs)) }
end
`

var peersCheck sync.Map // version name -> error

// peersDir returns the peers folder (testsuite.PeersDir: ../shared/peers beside the
// module root, or FERRY_PEERS).
func peersDir(t testing.TB) string {
	t.Helper()
	d, err := testsuite.PeersDir()
	if err != nil {
		testsuite.Unavailable(t, "Ruby peers: %v", err)
	}
	return d
}

// requireRubyBus fails (CI) or skips unless ruby-with can load sidekiq-bus for v.
func requireRubyBus(t testing.TB, v rubyBus) string {
	t.Helper()
	rw := filepath.Join(peersDir(t), "ruby-with")
	errAny, ok := peersCheck.Load(v.Name)
	if !ok {
		errAny, _ = peersCheck.LoadOrStore(v.Name, checkRubyBus(rw, v))
	}
	if err, _ := errAny.(error); err != nil {
		testsuite.Unavailable(t, "%v", err)
	}
	return rw
}

// checkRubyBus reports why ruby-with cannot run v, or nil (a nil error is stored as a
// non-error value).
func checkRubyBus(rw string, v rubyBus) any {
	err := func() error {
		if _, err := os.Stat(rw); err != nil {
			return fmt.Errorf("Ruby peers not found (%v); they live in ../shared/peers beside the project", err)
		}
		if _, err := exec.LookPath("ruby"); err != nil {
			return fmt.Errorf("ruby not found (scripts/setup.sh installs it): %v", err)
		}
		out, err := exec.Command(rw, v.Name, "-e", `require "sidekiq"; require "sidekiq-bus"; print Sidekiq::VERSION`).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s cannot load sidekiq-bus (scripts/setup.sh installs ruby-multi-json and ruby-redis): %v: %s", v.Name, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != v.Sidekiq {
			return fmt.Errorf("%s loads Sidekiq %s, want %s", v.Name, got, v.Sidekiq)
		}
		return nil
	}()
	if err != nil {
		return err
	}
	return true
}

// runRuby runs script (after busPrelude) with v against url and returns its stdout.
func runRuby(t testing.TB, v rubyBus, url, script string) string {
	t.Helper()
	rw := requireRubyBus(t, v)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rw, v.Name, "-e", busPrelude+"\n"+script)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ruby (%s): %v\nstderr:\n%s\nstdout:\n%s", v.Name, err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// rubySidekiq is a running Sidekiq server process of one Ruby bus version.
type rubySidekiq struct {
	cmd  *exec.Cmd
	out  *testsuite.SyncBuffer
	done chan struct{}
}

// startRubySidekiq starts `sidekiq -r app.rb` (busPrelude, then appRuby) of version v on
// url, working queues, with concurrency 5. It is stopped when the test ends.
func startRubySidekiq(t testing.TB, v rubyBus, url, appRuby string, queues ...string) *rubySidekiq {
	t.Helper()
	return startRubySidekiqC(t, v, url, appRuby, 5, queues...)
}

// startRubySidekiqC is startRubySidekiq with the given concurrency.
func startRubySidekiqC(t testing.TB, v rubyBus, url, appRuby string, concurrency int, queues ...string) *rubySidekiq {
	t.Helper()
	rw := requireRubyBus(t, v)
	binOut, err := exec.Command(rw, "--bin", v.Name).Output()
	if err != nil {
		testsuite.Unavailable(t, "no sidekiq binary for %s: %v", v.Name, err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "app.rb")
	if err := os.WriteFile(file, []byte(busPrelude+"\n"+appRuby), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{v.Name, strings.TrimSpace(string(binOut)), "-r", file, "-c", strconv.Itoa(concurrency), "-t", "5"}
	for _, q := range queues {
		args = append(args, "-q", q)
	}
	cmd := exec.Command(rw, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	p := &rubySidekiq{cmd: cmd, out: &testsuite.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sidekiq (%s): %v", v.Name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("sidekiq (%s) output:\n%s", v.Name, tail(p.out.String(), 6000))
		}
	})
	return p
}

// stop sends TERM (Sidekiq finishes its running jobs) and KILL after grace.
func (p *rubySidekiq) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
