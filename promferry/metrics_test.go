package promferry_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/promferry"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestServerOutcomes runs a real server with every kind of outcome and checks each counter
// by queue and class: processed counts failures too (as Sidekiq's stat:processed), a class
// without a handler and a payload that is not a job count as "other", a skip is counted,
// and run time, latency and fetch batches are recorded.
func TestServerOutcomes(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 4, Queues: []string{"critical", "default"}})
	m := promferry.New(nil)
	m.Attach(srv)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)

	var busyInHandler atomic.Int64
	srv.Handle("OkWorker", sidekiq.HandlerFunc(func(ctx context.Context, _ *sidekiq.Job) error {
		s := samples(t, reg)
		busyInHandler.Store(int64(s[`ferry_busy_workers{queue="critical"}`]))
		return nil
	}))
	srv.Handle("FailWorker", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return errors.New("boom") }))
	srv.Handle("DiscardWorker", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		return sidekiq.Discard(errors.New("bad input"))
	}))
	srv.Handle("SkipWorker", sidekiq.HandlerFunc(func(ctx context.Context, _ *sidekiq.Job) error {
		return middleware.Skip(ctx, "gone")
	}))
	srv.Handle("LaterWorker", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		return sidekiq.RetryIn(time.Hour, errors.New("busy elsewhere"))
	}))
	c := srv.Client()
	push := func(class, queue string, opts ...sidekiq.PushOption) {
		t.Helper()
		if _, err := c.Push(ctx, class, []any{1}, append(opts, sidekiq.Queue(queue))...); err != nil {
			t.Fatal(err)
		}
	}
	push("OkWorker", "critical")
	push("OkWorker", "critical")
	push("FailWorker", "default")
	push("FailWorker", "default", sidekiq.NoRetry()) // dropped
	push("DiscardWorker", "default")
	push("SkipWorker", "default")
	push("LaterWorker", "default")
	push("RubyOnlyWorker", "default") // no handler: retried, as "other"
	if err := rdb.LPush(ctx, "queue:default", `{"class":"X","args":"not an array"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, "9 jobs processed", func() bool {
		total := 0.0
		for k, v := range samples(t, reg) {
			if strings.HasPrefix(k, "ferry_jobs_processed_total{") {
				total += v
			}
		}
		return total == 9
	})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		t.Fatal(err)
	}

	s := samples(t, reg)
	want := map[string]float64{
		"ferry_jobs_processed_total" + qc("critical", "OkWorker"):       2,
		"ferry_jobs_failed_total" + qc("critical", "OkWorker"):          0,
		"ferry_jobs_processed_total" + qc("default", "FailWorker"):      2,
		"ferry_jobs_failed_total" + qc("default", "FailWorker"):         2,
		"ferry_jobs_retried_total" + qc("default", "FailWorker"):        1,
		"ferry_jobs_dropped_total" + qc("default", "FailWorker"):        1,
		"ferry_jobs_dead_total" + qc("default", "DiscardWorker"):        1,
		"ferry_jobs_failed_total" + qc("default", "DiscardWorker"):      1,
		"ferry_jobs_skipped_total" + qc("default", "SkipWorker"):        1,
		"ferry_jobs_processed_total" + qc("default", "SkipWorker"):      1,
		"ferry_jobs_failed_total" + qc("default", "SkipWorker"):         0,
		"ferry_jobs_rescheduled_total" + qc("default", "LaterWorker"):   1,
		"ferry_jobs_failed_total" + qc("default", "LaterWorker"):        0,
		"ferry_jobs_processed_total" + qc("default", "other"):           2, // no handler, not a job
		"ferry_jobs_retried_total" + qc("default", "other"):             1,
		"ferry_jobs_dead_total" + qc("default", "other"):                1,
		"ferry_job_duration_seconds_count" + qc("critical", "OkWorker"): 2,
		"ferry_job_latency_seconds_count" + qc("critical", "OkWorker"):  2,
		`ferry_busy_workers{queue="critical"}`:                          0,
		`ferry_busy_workers{queue="default"}`:                           0,
	}
	for k, v := range want {
		got, ok := s[k]
		if !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if busyInHandler.Load() < 1 {
		t.Errorf("busy workers seen from inside a running handler = %d, want ≥ 1", busyInHandler.Load())
	}
	if s[`ferry_fetch_batch_size_count{queue="default"}`] < 1 || s[`ferry_fetch_batch_size_sum{queue="default"}`] < 7 {
		t.Errorf("fetch batches of default: count %v sum %v, want at least 1 batch and 7 jobs",
			s[`ferry_fetch_batch_size_count{queue="default"}`], s[`ferry_fetch_batch_size_sum{queue="default"}`])
	}
	for _, k := range series(s, "ferry_jobs_processed_total") {
		if strings.Contains(k, "RubyOnlyWorker") || strings.Contains(k, `"X"`) {
			t.Errorf("a class without a handler got a label of its own: %s", k)
		}
	}
	if problems, err := promtest.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestLabelsAreBounded: classes and queues a payload could invent fold into "other", and
// the number of series stays bounded however many distinct names arrive; long names are
// cut and invalid UTF-8 made valid (client_golang panics on it).
func TestLabelsAreBounded(t *testing.T) {
	t.Parallel()
	m := promferry.New(&promferry.Config{MaxClasses: 3, MaxQueues: 2})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	job := &sidekiq.Job{Class: "K", Args: []byte("[]")}
	noHandler := &sidekiq.NoHandlerError{Class: "K"}
	for i := range 1000 {
		name := strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i)
		// Unknown classes: always "other".
		m.JobFinished(&sidekiq.JobEvent{Job: job, Class: name, Queue: "default", Outcome: sidekiq.OutcomeRetried, Err: noHandler})
		// Handled classes and queues past the caps: "other" too.
		m.JobFinished(&sidekiq.JobEvent{Job: job, Class: name, Queue: "q" + name, Outcome: sidekiq.OutcomeSucceeded})
		m.RedisError("op"+name, errors.New("x"))
	}
	m.JobFinished(&sidekiq.JobEvent{Job: job, Class: "\xff\xfe bad", Queue: "default", Outcome: sidekiq.OutcomeSucceeded})

	s := samples(t, reg)
	if n := len(series(s, "ferry_jobs_processed_total")); n > 3*3+3 {
		t.Errorf("%d processed series for 1000 classes and queues, want at most (3+1)*(2+1)", n)
	}
	if n := len(series(s, "ferry_redis_errors_total")); n > 33 {
		t.Errorf("%d redis error series for 1000 ops, want at most 33", n)
	}
	if got := s["ferry_jobs_retried_total"+qc("default", "other")]; got != 1000 {
		t.Errorf("jobs without a handler counted as other: %v, want 1000", got)
	}
	for k := range s {
		if len(k) > 2*promferry.MaxLabelLength+100 {
			t.Errorf("series key too long (%d bytes): label not cut", len(k))
		}
	}

	// An allowlist gives exactly the listed classes their own label.
	m2 := promferry.New(&promferry.Config{Classes: []string{"Billing"}})
	reg2 := prometheus.NewPedanticRegistry()
	reg2.MustRegister(m2)
	for _, class := range []string{"Billing", "Other1", "Other2"} {
		m2.JobFinished(&sidekiq.JobEvent{Job: job, Class: class, Queue: "default", Outcome: sidekiq.OutcomeSucceeded})
	}
	s2 := samples(t, reg2)
	if s2["ferry_jobs_processed_total"+qc("default", "Billing")] != 1 || s2["ferry_jobs_processed_total"+qc("default", "other")] != 2 {
		t.Errorf("allowlist: %v", series(s2, "ferry_jobs_processed_total"))
	}
}

// TestRequeuedCountsOnce: a job pushed back by a stopping server is counted as requeued,
// not as processed, and its run time is not recorded (it runs again later).
func TestRequeuedCountsOnce(t *testing.T) {
	t.Parallel()
	m := promferry.New(nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	job := &sidekiq.Job{Class: "K", Args: []byte("[]"), EnqueuedAt: time.Now()}
	m.JobFinished(&sidekiq.JobEvent{Job: job, Class: "K", Queue: "q", Outcome: sidekiq.OutcomeRequeued, Duration: time.Second})
	s := samples(t, reg)
	if s["ferry_jobs_requeued_total"+qc("q", "K")] != 1 || s["ferry_jobs_processed_total"+qc("q", "K")] != 0 ||
		s["ferry_job_duration_seconds_count"+qc("q", "K")] != 0 {
		t.Errorf("requeued: %v", s)
	}
}
