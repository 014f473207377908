package sidekiq_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// backends runs f against the embedded Redis and the real one.
var backends = testsuite.Backends

// t0 is a fixed instant with a fractional second, for fake clocks.
var t0 = time.Unix(1795352598, 824373000)

// startServer starts srv and stops it when the test ends.
func startServer(t *testing.T, srv *sidekiq.Server) {
	t.Helper()
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, what, cond)
}

func zcard(t *testing.T, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := rdb.ZCard(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type failingError struct{}

func (failingError) Error() string      { return "card declined" }
func (failingError) ErrorClass() string { return "Payments::Declined" }

// TestFailureWritesSidekiqRetryEntry: the first failure writes retry_count 0, failed_at,
// error_class, error_message and a score of count⁴+15+jitter; the second keeps failed_at
// byte for byte, adds retried_at and retry_count 1; unknown keys survive both.
func TestFailureWritesSidekiqRetryEntry(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		clk := testutil.NewFakeClock(t0)
		client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Clock: clk})
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2, Clock: clk, PollInterval: 10 * time.Millisecond})
		srv.Handle("ChargeWorker", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
			return fmt.Errorf("charging: %w", failingError{})
		}))
		jid, err := client.Push(ctx, "ChargeWorker", []any{42}, sidekiq.Extra("tags", []string{"billing"}), sidekiq.Extra("custom_key", map[string]any{"a": 1}))
		if err != nil {
			t.Fatal(err)
		}
		startServer(t, srv)
		waitFor(t, "the first retry entry", func() bool { return zcard(t, rdb, "retry") == 1 })

		entries, err := testutil.Scheduled(ctx, rdb, "", "retry")
		if err != nil {
			t.Fatal(err)
		}
		e := entries[0]
		if e.JID != jid || e.Class != "ChargeWorker" || e.Queue != "default" {
			t.Fatalf("retry entry is %s %s %s", e.JID, e.Class, e.Queue)
		}
		if e.RetryCount == nil || *e.RetryCount != 0 {
			t.Fatalf("retry_count = %v, want 0", e.RetryCount)
		}
		if !sameInstant(e.FailedAt, t0) || !e.RetriedAt.IsZero() {
			t.Fatalf("failed_at %v retried_at %v, want %v and none", e.FailedAt, e.RetriedAt, t0)
		}
		if e.ErrorClass != "Payments::Declined" || e.ErrorMessage != "charging: card declined" {
			t.Fatalf("error %q %q", e.ErrorClass, e.ErrorMessage)
		}
		if got := e.At.Sub(t0); got < 15*time.Second-time.Microsecond || got > 24*time.Second+time.Microsecond {
			t.Fatalf("first retry in %v, want 15s to 24s", got)
		}
		if string(e.Extra["custom_key"]) != `{"a":1}` || string(e.Extra["tags"]) != `["billing"]` {
			t.Fatalf("unknown keys changed: %s %s", e.Extra["custom_key"], e.Extra["tags"])
		}
		firstRaw := string(e.Raw())

		// Due: the scheduler moves it back to its queue and it fails again.
		clk.Set(e.At.Add(time.Second))
		waitFor(t, "the second failure", func() bool {
			es, _ := testutil.Scheduled(ctx, rdb, "", "retry")
			return len(es) == 1 && es[0].RetryCount != nil && *es[0].RetryCount == 1
		})
		entries, _ = testutil.Scheduled(ctx, rdb, "", "retry")
		e2 := entries[0]
		if !sameInstant(e2.RetriedAt, e.At.Add(time.Second)) {
			t.Fatalf("retried_at = %v", e2.RetriedAt)
		}
		if got := e2.At.Sub(e2.RetriedAt); got < 16*time.Second-time.Microsecond || got > 34*time.Second+time.Microsecond {
			t.Fatalf("second retry in %v, want 1⁴+15 s plus up to 18 s of jitter", got)
		}
		if !strings.Contains(string(e2.Raw()), rawField(t, firstRaw, "failed_at")) || !strings.Contains(string(e2.Raw()), rawField(t, firstRaw, "created_at")) {
			t.Fatalf("failed_at/created_at not kept byte for byte:\n%s\n%s", firstRaw, e2.Raw())
		}
	})
}

// sameInstant compares times to the microsecond: float epoch seconds carry no more.
func sameInstant(a, b time.Time) bool { return a.Sub(b).Abs() <= time.Microsecond }

// rawField returns `"key":value` as it appears in raw.
func rawField(t *testing.T, raw, key string) string {
	t.Helper()
	i := strings.Index(raw, `"`+key+`":`)
	if i < 0 {
		t.Fatalf("%s not in %s", key, raw)
	}
	j := i + len(key) + 3
	for j < len(raw) && raw[j] != ',' && raw[j] != '}' {
		j++
	}
	return raw[i:j]
}

// TestFailureOutcomesByRetryOption: what a failure leads to, by the payload's "retry" and
// "dead" keys and by Discard.
func TestFailureOutcomesByRetryOption(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		opts      []sidekiq.PushOption
		err       error
		wantRetry int64
		wantDead  int64
		wantDeath bool
	}{
		{"default retries", nil, errors.New("boom"), 1, 0, false},
		{"retry 0 buries at once", []sidekiq.PushOption{sidekiq.Retry(0)}, errors.New("boom"), 0, 1, true},
		{"retry false drops", []sidekiq.PushOption{sidekiq.NoRetry()}, errors.New("boom"), 0, 0, true},
		{"retry 0 with dead false drops", []sidekiq.PushOption{sidekiq.Retry(0), sidekiq.Extra("dead", false)}, errors.New("boom"), 0, 0, true},
		{"discard buries without retry", nil, sidekiq.Discard(errors.New("bad input")), 0, 1, true},
		{"discard with retry false drops", []sidekiq.PushOption{sidekiq.NoRetry()}, sidekiq.Discard(errors.New("bad")), 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb, _ := testutil.NewEmbeddedRedis(t)
			ctx := context.Background()
			deaths := make(chan error, 1)
			ran := make(chan struct{}, 1)
			srv := sidekiq.NewServer(rdb, &sidekiq.Config{
				Concurrency: 1,
				OnDeath:     func(_ context.Context, _ *sidekiq.Job, err error) { deaths <- err },
			})
			srv.Handle("W", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { ran <- struct{}{}; return tc.err }))
			if _, err := sidekiq.NewClient(rdb, nil).Push(ctx, "W", nil, tc.opts...); err != nil {
				t.Fatal(err)
			}
			startServer(t, srv)
			<-ran
			waitFor(t, "the outcome", func() bool {
				n, err := rdb.HLen(ctx, "ferry:inflight:"+srv.Identity()).Result()
				return err == nil && n == 0
			})
			if got := zcard(t, rdb, "retry"); got != tc.wantRetry {
				t.Errorf("retry set has %d, want %d", got, tc.wantRetry)
			}
			if got := zcard(t, rdb, "dead"); got != tc.wantDead {
				t.Errorf("dead set has %d, want %d", got, tc.wantDead)
			}
			if tc.wantDeath {
				select {
				case err := <-deaths:
					if !errors.Is(err, tc.err) && err.Error() != tc.err.Error() {
						t.Errorf("OnDeath got %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Error("OnDeath was not called")
				}
			}
		})
	}
}

// TestRetryNExhausts: "retry": 2 allows two retries; the third failure buries the job with
// retry_count 2.
func TestRetryNExhausts(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		var mu sync.Mutex
		runs := 0
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{
			Concurrency:  1,
			PollInterval: 10 * time.Millisecond,
			RetryDelay:   func(int, error, *sidekiq.Job) time.Duration { return time.Millisecond },
		})
		srv.Handle("W", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
			mu.Lock()
			runs++
			mu.Unlock()
			return errors.New("boom")
		}))
		if _, err := sidekiq.NewClient(rdb, nil).Push(ctx, "W", nil, sidekiq.Retry(2)); err != nil {
			t.Fatal(err)
		}
		startServer(t, srv)
		waitFor(t, "the job in the dead set", func() bool { return zcard(t, rdb, "dead") == 1 })
		dead, _ := testutil.Scheduled(ctx, rdb, "", "dead")
		if rc := dead[0].RetryCount; rc == nil || *rc != 2 {
			t.Fatalf("dead retry_count = %v, want 2", rc)
		}
		mu.Lock()
		defer mu.Unlock()
		if runs != 3 {
			t.Fatalf("ran %d times, want 3 (the first run and two retries)", runs)
		}
	})
}

// TestRetryInReschedulesWithoutFailure: RetryIn puts the job in the schedule set with no
// error recorded and no retry used; stat:failed stays 0.
func TestRetryInReschedulesWithoutFailure(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		clk := testutil.NewFakeClock(t0)
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1, Clock: clk, PollInterval: time.Hour})
		srv.Handle("W", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
			return sidekiq.RetryIn(30*time.Second, errors.New("lock held"))
		}))
		if _, err := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Clock: clk}).Push(ctx, "W", nil); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the rescheduled job", func() bool { return zcard(t, rdb, "schedule") == 1 })
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := srv.Stop(sctx); err != nil {
			t.Fatal(err)
		}
		s, _ := testutil.Scheduled(ctx, rdb, "", "schedule")
		j := s[0]
		if !sameInstant(j.At, t0.Add(30*time.Second)) {
			t.Errorf("rescheduled for %v, want %v", j.At, t0.Add(30*time.Second))
		}
		if j.RetryCount != nil || j.ErrorMessage != "" || !j.EnqueuedAt.IsZero() {
			t.Errorf("RetryIn recorded a failure: %s", j.Raw())
		}
		if f, _ := rdb.Get(ctx, "stat:failed").Result(); f != "" && f != "0" {
			t.Errorf("stat:failed = %s, want 0", f)
		}
		if p, _ := rdb.Get(ctx, "stat:processed").Result(); p != "1" {
			t.Errorf("stat:processed = %q, want 1", p)
		}
	})
}

// TestPanicIsAFailureWithStack: a panicking handler fails the job with error_class
// Ferry::Panic and, when "backtrace" asks, Go stack frames in error_backtrace; the server
// keeps running and runs the next job.
func TestPanicIsAFailureWithStack(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	next := make(chan struct{})
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1})
	srv.Handle("Panics", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { panic("nil map write") }))
	srv.Handle("After", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { close(next); return nil }))
	c := sidekiq.NewClient(rdb, nil)
	if _, err := c.Push(ctx, "Panics", nil, sidekiq.Extra("backtrace", 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "After", nil); err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	select {
	case <-next:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not run the job after the panic")
	}
	waitFor(t, "the retry entry", func() bool { return zcard(t, rdb, "retry") == 1 })
	es, _ := testutil.Scheduled(ctx, rdb, "", "retry")
	if es[0].ErrorClass != "Ferry::Panic" || es[0].ErrorMessage != "panic: nil map write" {
		t.Fatalf("error %q %q", es[0].ErrorClass, es[0].ErrorMessage)
	}
	lines, err := es[0].ErrorBacktrace()
	if err != nil || len(lines) != 5 {
		t.Fatalf("backtrace %v %v, want 5 lines", lines, err)
	}
}

// TestInvalidPayloadsGoToDeadSet: payloads that can never run go to the dead set with the
// reason, are never retried, and do not stop the server.
func TestInvalidPayloadsGoToDeadSet(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		bad := []string{
			`not json at all`,
			`{"class":"W","args":{"a":1},"jid":"abc"}`,
			`{"args":[1]}`,
			`[1,2,3]`,
			`{"class":"W","args":[1],`,
		}
		for _, b := range bad {
			rdb.LPush(ctx, "queue:default", b)
		}
		ok := make(chan struct{})
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2})
		srv.Handle("W", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { close(ok); return nil }))
		if _, err := sidekiq.NewClient(rdb, nil).Push(ctx, "W", []any{1}); err != nil {
			t.Fatal(err)
		}
		startServer(t, srv)
		<-ok
		waitFor(t, "every bad payload in the dead set", func() bool { return zcard(t, rdb, "dead") == int64(len(bad)) })
		members, _ := rdb.ZRange(ctx, "dead", 0, -1).Result()
		annotated := 0
		for _, m := range members {
			if strings.Contains(m, `"error_class":"Ferry::InvalidPayload"`) {
				annotated++
				if !strings.Contains(m, `"args\" must be a JSON array`) && !strings.Contains(m, `\"class\" missing`) {
					t.Errorf("dead entry does not say what is wrong: %s", m)
				}
			}
		}
		if annotated != 2 { // the two JSON objects; the rest are kept as they came
			t.Errorf("%d annotated dead entries, want 2: %v", annotated, members)
		}
		if zcard(t, rdb, "retry") != 0 {
			t.Error("an invalid payload was retried")
		}
	})
}

// TestSchedulerPromotesDueJobsOnce: three servers poll the same schedule; every due job is
// pushed to its queue exactly once, without "at" and with enqueued_at; jobs not yet due stay.
func TestSchedulerPromotesDueJobsOnce(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		clk := testutil.NewFakeClock(t0)
		c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Clock: clk})
		const due, later = 250, 5
		for i := 0; i < due; i++ {
			if _, err := c.Push(ctx, "Later", []any{i}, sidekiq.In(time.Minute), sidekiq.Queue("q"+strconv.Itoa(i%3))); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < later; i++ {
			if _, err := c.Push(ctx, "Later", []any{-1}, sidekiq.In(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		// A member with a stale "at", as some producers leave it.
		rdb.ZAdd(ctx, "schedule", redis.Z{Score: float64(t0.Unix()), Member: `{"class":"Later","args":[999],"jid":"stale","queue":"q0","at":1.5}`})
		clk.Set(t0.Add(2 * time.Minute))
		for i := 0; i < 3; i++ {
			// Queues nobody has work in, so the servers only poll.
			srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1, Clock: clk, PollInterval: 5 * time.Millisecond, Queues: []string{"none"}})
			startServer(t, srv)
		}
		total := func() int64 {
			var n int64
			for q := 0; q < 3; q++ {
				n += rdb.LLen(ctx, "queue:q"+strconv.Itoa(q)).Val()
			}
			return n
		}
		waitFor(t, "every due job on its queue", func() bool { return total() == due+1 })
		seen := map[string]bool{}
		for q := 0; q < 3; q++ {
			jobs, err := testutil.Enqueued(ctx, rdb, "", "q"+strconv.Itoa(q))
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if seen[j.JID] {
					t.Fatalf("job %s promoted twice", j.JID)
				}
				seen[j.JID] = true
				if _, hasAt := j.Extra["at"]; hasAt || !sameInstant(j.EnqueuedAt, t0.Add(2*time.Minute)) {
					t.Fatalf("promoted payload wrong: %s", j.Raw())
				}
			}
		}
		if zcard(t, rdb, "schedule") != later {
			t.Fatalf("schedule has %d, want the %d jobs not yet due", zcard(t, rdb, "schedule"), later)
		}
	})
}

// TestDeadSetTrimmed: the dead set keeps DeadMaxJobs-1 entries (Sidekiq's off-by-one) and
// drops entries older than DeadTimeout.
func TestDeadSetTrimmed(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	clk := testutil.NewFakeClock(t0)
	rdb.ZAdd(ctx, "dead", redis.Z{Score: float64(t0.Add(-48 * time.Hour).Unix()), Member: `{"class":"Old","args":[]}`})
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1, Clock: clk, DeadMaxJobs: 4, DeadTimeout: 24 * time.Hour})
	srv.Handle("W", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return sidekiq.Discard(errors.New("no")) }))
	c := sidekiq.NewClient(rdb, nil)
	for i := 0; i < 6; i++ {
		if _, err := c.Push(ctx, "W", []any{i}); err != nil {
			t.Fatal(err)
		}
	}
	startServer(t, srv)
	waitFor(t, "all six failures", func() bool {
		// A failed read (a timeout on a loaded machine) must not pass for "empty".
		p, perr := rdb.HLen(ctx, "ferry:inflight:"+srv.Identity()).Result()
		q, qerr := rdb.LLen(ctx, "queue:default").Result()
		return perr == nil && qerr == nil && p == 0 && q == 0
	})
	members, _ := rdb.ZRange(ctx, "dead", 0, -1).Result()
	if len(members) != 3 {
		t.Fatalf("dead set has %d, want 3 (DeadMaxJobs 4 keeps 3, as Sidekiq)", len(members))
	}
	for _, m := range members {
		if strings.Contains(m, `"Old"`) {
			t.Fatal("an entry older than DeadTimeout was kept")
		}
	}
}

// TestDefaultRetryDelayFormula: count⁴ + 15 + rand(10)·(count+1) seconds.
func TestDefaultRetryDelayFormula(t *testing.T) {
	t.Parallel()
	for _, count := range []int{0, 1, 2, 5, 10, 24} {
		base := time.Duration(count*count*count*count+15) * time.Second
		seen := map[time.Duration]bool{}
		for i := 0; i < 400; i++ {
			d := sidekiq.DefaultRetryDelay(count, nil, nil)
			jitter := d - base
			if jitter < 0 || jitter > time.Duration(9*(count+1))*time.Second || jitter%(time.Duration(count+1)*time.Second) != 0 {
				t.Fatalf("count %d: delay %v is not %v + k·%d s with k in 0..9", count, d, base, count+1)
			}
			seen[jitter] = true
		}
		if len(seen) < 8 {
			t.Fatalf("count %d: only %d distinct jitters in 400 draws", count, len(seen))
		}
	}
}
