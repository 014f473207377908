package api_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
)

// rubyState is Ruby that defines job classes and fail_one(queue), which pops a job from a
// queue and fails it through Sidekiq's own JobRetry, exactly as a Sidekiq process does
// (retry set, or dead set once retries are used up). It runs on Sidekiq 6, 7 and 8.
const rubyState = `
require "sidekiq/job_retry"
JobMod = defined?(Sidekiq::Job) ? Sidekiq::Job : Sidekiq::Worker
class OkJob; include JobMod; def perform(*a); end; end
class FailJob; include JobMod; sidekiq_options retry: 5; def perform(*a); raise ArgumentError, "bad input #{a.inspect}"; end; end
class DieJob; include JobMod; sidekiq_options retry: 0; def perform(*a); raise "fatal <&> error"; end; end
def fail_one(queue)
  jobstr = Sidekiq.redis { |c| c.rpop("queue:#{queue}") }
  job = Sidekiq.load_json(jobstr)
  klass = Object.const_get(job["class"])
  retrier = defined?(Sidekiq::Capsule) ? Sidekiq::JobRetry.new(Sidekiq.default_configuration.default_capsule) : Sidekiq::JobRetry.new
  begin
    retrier.global(jobstr, queue) do
      retrier.local(klass.new, jobstr, queue) { klass.new.perform(*job["args"]) }
    end
  rescue Sidekiq::JobRetry::Handled
  end
end
`

// rubyMakeState fills Redis the way a Sidekiq app would: 3 retries (FailJob, failed
// once; one of them twice), 2 dead jobs (DieJob), 2 scheduled jobs, 3 waiting jobs.
const rubyMakeState = `
3.times { |i| FailJob.perform_async(i, "x" * i) }
3.times { fail_one("default") }
FailJob.perform_async(99)
fail_one("default")
Sidekiq::RetrySet.new.each { |e| e.add_to_queue if e.args == [99] }
fail_one("default")
2.times { |i| DieJob.set(queue: "critical").perform_async(i) }
2.times { fail_one("critical") }
OkJob.perform_in(3600, "later")
OkJob.set(queue: "low").perform_in(7200, "much later")
OkJob.perform_async(1)
OkJob.perform_async(2)
OkJob.set(queue: "low").perform_async(3)
`

// peersDir is the shared Ruby peers (Sidekiq 7.3.10 and 8.1.7 sources), as every
// developer and CI have it (testsuite.PeersDir).
func peersDir() string {
	d, err := testsuite.PeersDir()
	if err != nil {
		return filepath.Join("..", "..", "shared", "peers")
	}
	return d
}

// rubyPeer runs script with Sidekiq 7 or 8 ("sidekiq7", "sidekiq8") from the shared peers
// against redisURL and returns its stdout.
func rubyPeer(t *testing.T, version, redisURL, script string) string {
	t.Helper()
	testsuite.RequireRuby(t)
	with := filepath.Join(peersDir(), "ruby-with")
	if _, err := os.Stat(with); err != nil {
		testsuite.Unavailable(t, "Ruby peers not found at %s: %v", peersDir(), err)
	}
	prelude := `
$stdout.sync = true
require "json"
require "logger"
require "sidekiq"
require "sidekiq/api"
require "sidekiq/capsule"
require "sidekiq/job_retry"
Sidekiq.default_configuration.logger = Logger.new($stderr, level: Logger::WARN)
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
`
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, with, version, "-e", prelude+script)
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ruby %s: %v\nstderr:\n%s", version, err, errb.String())
	}
	return out.String()
}
