package interop

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyCrossJob fails on its first run and records, on its second, what its payload said
// about the failure (rubyCapturePayload exposes the payload hash to the job).
const rubyCrossJob = rubyCapturePayload + `
class CrossJob
  include Sidekiq::Worker
  sidekiq_options queue: "cross", backtrace: true
  def perform(*args)
    job = Thread.current[:ferry_job]
    raise ArgumentError, "first run fails in Ruby" unless job.key?("retry_count")
    rec = job.slice("jid", "args", "retry_count", "error_class", "error_message", "tenant", "queue", "retry_queue")
    rec["has_failed_at"] = job["failed_at"].is_a?(Numeric)
    rec["backtrace_lines"] = job["error_backtrace"] ? Sidekiq::JobRecord.new(Sidekiq.dump_json(job)).error_backtrace.size : 0
    Sidekiq.redis { |c| c.rpush("ferry:cross", JSON.generate(rec)) }
  end
end
`

// makeRetriesDue moves every retry entry to now, through Ruby's API, so neither side waits
// for the real back-off.
const makeRetriesDue = `Sidekiq::RetrySet.new.each { |e| e.reschedule(Time.now.to_f) }
puts Sidekiq::RetrySet.new.size`

// TestRubyFailedJobRetriedByGo: two jobs that failed in the real sidekiq binary are run by
// a Go server, one after Ruby's API rescheduled its retry entry to now (Go's retry poller
// moves it), the other after Retry Now was pressed on its page in the Web UI (which
// re-pushes it with retry_count lowered by one, as Sidekiq does for a manual retry). Go sees
// every field Ruby wrote: the retry count, error class and message, the compressed
// backtrace, and an application key Ruby added.
func TestRubyFailedJobRetriedByGo(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyFailedJobRetriedByGo)
}

func testRubyFailedJobRetriedByGo(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()

	var jids []string
	mustUnmarshalPlain(t, lastLine(sk.Ruby(t, db.URL, `
puts JSON.generate([[7, "x"], [8, "y"]].map { |args|
  Sidekiq::Client.push("class" => "CrossJob", "queue" => "cross", "args" => args, "tenant" => "acme", "backtrace" => true)
})`)), &jids)
	polled, pressed := jids[0], jids[1]
	rb := sk.StartSidekiq(t, db.URL, rubyCrossJob, "-q", "cross", "-c", "2")
	testutil.Eventually(t, 30*time.Second, "Ruby's retry entries", func() bool { return db.Client.ZCard(ctx, "retry").Val() == 2 })
	rb.Stop(10 * time.Second)
	out := sk.Ruby(t, db.URL, rubyWeb+`
Sidekiq::RetrySet.new.find_job(ENV.fetch("POLLED")).reschedule(Time.now.to_f)
puts JSON.generate(ferry_retry_now(ENV.fetch("PRESSED")))
`, testsuite.WithEnv("POLLED="+polled, "PRESSED="+pressed))
	requireRedirect(t, "Retry Now", out, "/retries")

	seen := make(chan *sidekiq.Job, 4)
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 2, Queues: []string{"cross"}, PollInterval: 200 * time.Millisecond})
	srv.Handle("CrossJob", sidekiq.HandlerFunc(func(_ context.Context, job *sidekiq.Job) error {
		seen <- job.Clone()
		return nil
	}))
	runGoServer(t, db, srv)
	ran := map[string]*sidekiq.Job{}
	for len(ran) < 2 {
		select {
		case job := <-seen:
			if ran[job.JID] != nil {
				t.Errorf("job %s ran twice", job.JID)
			}
			ran[job.JID] = job
		case <-time.After(20 * time.Second):
			t.Fatalf("Go ran %d of the 2 jobs Ruby failed within 20 s", len(ran))
		}
	}
	for jid, want := range map[string]struct {
		args  string
		count int
	}{polled: {`[7,"x"]`, 0}, pressed: {`[8,"y"]`, -1}} {
		job := ran[jid]
		if job == nil {
			t.Errorf("job %s did not run in Go; ran %v", jid, ran)
			continue
		}
		if string(job.Args) != want.args || job.Queue != "cross" {
			t.Errorf("ran %s with args %s queue %s; want %s cross", jid, job.Args, job.Queue, want.args)
		}
		if job.RetryCount == nil || *job.RetryCount != want.count {
			t.Errorf("%s: retry_count = %v, want %d", jid, job.RetryCount, want.count)
		}
		if job.ErrorClass != "ArgumentError" || job.ErrorMessage != "first run fails in Ruby" || job.FailedAt.IsZero() {
			t.Errorf("%s: error fields: class %q message %q failed_at %v", jid, job.ErrorClass, job.ErrorMessage, job.FailedAt)
		}
		requireRecent(t, jid+" failed_at", job.FailedAt)
		if string(job.Extra["tenant"]) != `"acme"` {
			t.Errorf("%s: tenant = %s, want \"acme\"; payload %s", jid, job.Extra["tenant"], job.Raw())
		}
		if bt, err := job.ErrorBacktrace(); err != nil || len(bt) == 0 {
			t.Errorf("%s: error_backtrace from Ruby: %d lines, %v", jid, len(bt), err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "retry set and queue empty", func() bool {
		return db.Client.ZCard(ctx, "retry").Val() == 0 && db.Client.LLen(ctx, "queue:cross").Val() == 0
	})
}

// TestGoFailedJobRetriedByRuby: the reverse. A Go handler fails; the real sidekiq binary
// retries the entry Go wrote and sees retry_count 0, Go's error class and message, a
// backtrace it can decode, and the application key.
func TestGoFailedJobRetriedByRuby(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testGoFailedJobRetriedByRuby)
}

func testGoFailedJobRetriedByRuby(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()

	var once sync.Once
	failed := make(chan struct{})
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 1, Queues: []string{"cross"}})
	srv.Handle("CrossJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		once.Do(func() { close(failed) })
		return failingError{}
	}))
	runGoServer(t, db, srv)
	c := sidekiq.NewClient(db.Client, nil)
	jid, err := c.Push(ctx, "CrossJob", []any{7, "x"}, sidekiq.Queue("cross"),
		sidekiq.Extra("tenant", "acme"), sidekiq.Extra("backtrace", true))
	if err != nil {
		t.Fatal(err)
	}
	<-failed
	testutil.Eventually(t, 10*time.Second, "Go's retry entry", func() bool { return db.Client.ZCard(ctx, "retry").Val() == 1 })
	stopGoServer(t, srv)
	if got := string(lastLine(sk.Ruby(t, db.URL, makeRetriesDue))); got != "1" {
		t.Fatalf("retry set size %s after reschedule, want 1", got)
	}

	sk.StartSidekiq(t, db.URL, rubyCrossJob, "-q", "cross", "-c", "2")
	var raw string
	testutil.Eventually(t, 30*time.Second, "Ruby's run of the job Go failed", func() bool {
		raw, _ = db.Client.LIndex(ctx, "ferry:cross", 0).Result()
		return raw != ""
	})
	var rec struct {
		JID            string          `json:"jid"`
		Args           json.RawMessage `json:"args"`
		RetryCount     *int            `json:"retry_count"`
		ErrorClass     string          `json:"error_class"`
		ErrorMessage   string          `json:"error_message"`
		Tenant         string          `json:"tenant"`
		Queue          string          `json:"queue"`
		HasFailedAt    bool            `json:"has_failed_at"`
		BacktraceLines int             `json:"backtrace_lines"`
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		t.Fatalf("Ruby's record %q: %v", raw, err)
	}
	if rec.JID != jid || string(rec.Args) != `[7,"x"]` || rec.Queue != "cross" || rec.Tenant != "acme" {
		t.Errorf("Ruby saw %s", raw)
	}
	if rec.RetryCount == nil || *rec.RetryCount != 0 || !rec.HasFailedAt {
		t.Errorf("Ruby saw retry_count %v, failed_at numeric %v", rec.RetryCount, rec.HasFailedAt)
	}
	if rec.ErrorClass != (failingError{}).ErrorClass() || rec.ErrorMessage != (failingError{}).Error() {
		t.Errorf("Ruby saw error %q %q", rec.ErrorClass, rec.ErrorMessage)
	}
	if rec.BacktraceLines == 0 {
		t.Error("Ruby could not decode Go's error_backtrace")
	}
}

// failingError is a Go error that names its Ruby-visible class.
type failingError struct{}

func (failingError) Error() string      { return "card declined" }
func (failingError) ErrorClass() string { return "Payments::Declined" }
