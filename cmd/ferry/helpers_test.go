package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/redis/go-redis/v9"
)

// result is what one ferry run left: its exit code and output.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// runOpts is how a test runs ferry in process.
type runOpts struct {
	env   map[string]string
	stdin string
	tty   bool // standard input is a terminal
}

// ferry runs one command line in process against redisURL (REDIS_URL) and returns its
// result.
func ferry(t *testing.T, redisURL string, o runOpts, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"REDIS_URL": redisURL}
	for k, v := range o.env {
		env[k] = v
	}
	a := &app{
		stdin:          strings.NewReader(o.stdin),
		stdout:         &out,
		stderr:         &errb,
		getenv:         func(k string) string { return env[k] },
		stdinTerminal:  func() bool { return o.tty },
		stdoutTerminal: func() bool { return false },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, a, args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs ferry and fails the test unless it exits with want.
func must(t *testing.T, want int, redisURL string, o runOpts, args ...string) result {
	t.Helper()
	r := ferry(t, redisURL, o, args...)
	if r.code != want {
		t.Fatalf("ferry %s: %s\nwant exit %d", strings.Join(args, " "), r, want)
	}
	return r
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// rubyState is Ruby that defines job classes and fail_one(queue), which pops a job and
// fails it through Sidekiq's own JobRetry, as a Sidekiq process does.
const rubyState = `
require "sidekiq/job_retry"
class OkJob; include Sidekiq::Worker; def perform(*a); end; end
class FailJob; include Sidekiq::Worker; sidekiq_options retry: 5; def perform(*a); raise ArgumentError, "bad input #{a.inspect}"; end; end
class DieJob; include Sidekiq::Worker; sidekiq_options retry: 0; def perform(*a); raise "fatal <&> error"; end; end
def fail_one(queue)
  jobstr = Sidekiq.redis { |c| c.rpop("queue:#{queue}") }
  job = Sidekiq.load_json(jobstr)
  klass = Object.const_get(job["class"])
  r = Sidekiq::JobRetry.new
  begin
    r.global(jobstr, queue) { r.local(klass.new, jobstr, queue) { klass.new.perform(*job["args"]) } }
  rescue Sidekiq::JobRetry::Handled
  end
end
4.times { |i| FailJob.perform_async(i) }
4.times { fail_one("default") }
2.times { |i| DieJob.set(queue: "critical").perform_async(i) }
2.times { fail_one("critical") }
OkJob.perform_in(3600, "later")
OkJob.set(queue: "low").perform_in(7200, "much later")
OkJob.perform_async(1)
OkJob.perform_async(2)
OkJob.set(queue: "low").perform_async(3)
puts JSON.generate(Sidekiq::RetrySet.new.map(&:jid).sort)
`

// rubyDB is a real Redis database holding state Ruby Sidekiq 6.4.1 made: 4 retries
// (FailJob), 2 dead (DieJob, queue critical), 2 scheduled, 3 queued (default 2, low 1).
// It returns the database and the retries' jids.
func rubyDB(t *testing.T) (*testsuite.RealRedisDB, []string) {
	t.Helper()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	out := testsuite.Ruby(t, db.URL, rubyState)
	var jids []string
	for _, f := range strings.Split(strings.Trim(strings.TrimSpace(out), "[]"), ",") {
		jids = append(jids, strings.Trim(f, `"`))
	}
	if len(jids) != 4 {
		t.Fatalf("Ruby made %q", out)
	}
	return db, jids
}

func TestMain(m *testing.M) {
	redis.SetLogger(silentLogger{}) // as main does: dial failures are reported by ferry itself
	os.Exit(m.Run())
}
