package sidekiq_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// payloadOf decodes a raw payload into a map to check which keys it has.
func payloadOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("payload %s: %v", raw, err)
	}
	return m
}

// onlyMember returns the single element of a list or sorted set, failing otherwise.
func onlyMember(t *testing.T, rdb redis.UniversalClient, key string, isZSet bool) string {
	t.Helper()
	ctx := context.Background()
	var got []string
	var err error
	if isZSet {
		got, err = rdb.ZRange(ctx, key, 0, -1).Result()
	} else {
		got, err = rdb.LRange(ctx, key, 0, -1).Result()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%s holds %d members, want 1: %v", key, len(got), got)
	}
	return got[0]
}

// TestPushWritesQueueAndQueuesSet: Push LPUSHes onto queue:<q>, adds q to the queues set and
// stamps created_at and enqueued_at with the clock's time.
func TestPushWritesQueueAndQueuesSet(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Clock: testutil.NewFakeClock(t0)})
		jid, err := client.Push(ctx, "HardWorker", []any{"bob", 5})
		if err != nil {
			t.Fatal(err)
		}
		queues, err := rdb.SMembers(ctx, "queues").Result()
		if err != nil || len(queues) != 1 || queues[0] != "default" {
			t.Fatalf("queues = %v, %v; want [default]", queues, err)
		}
		job, err := sidekiq.ParseJobString(onlyMember(t, rdb, "queue:default", false))
		if err != nil {
			t.Fatal(err)
		}
		if job.JID != jid || job.Class != "HardWorker" || job.Queue != "default" || string(job.Args) != `["bob",5]` {
			t.Fatalf("job = %s %s %s %s", job.JID, job.Class, job.Queue, job.Args)
		}
		if !sameInstant(job.CreatedAt, t0) || !sameInstant(job.EnqueuedAt, t0) {
			t.Fatalf("created_at %v enqueued_at %v, want %v", job.CreatedAt, job.EnqueuedAt, t0)
		}
		if !job.Retry.Enabled() || job.Retry.String() != "true" {
			t.Fatalf("retry = %s, want true", job.Retry)
		}
	})
}

// TestPushScheduled: In and At put the job in the schedule set scored by its run time,
// without enqueued_at; At in the past pushes at once.
func TestPushScheduled(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		opt       sidekiq.PushOption
		scheduled bool
		runAt     time.Time
	}{
		{"In", sidekiq.In(10 * time.Minute), true, t0.Add(10 * time.Minute)},
		{"At future", sidekiq.At(t0.Add(time.Hour)), true, t0.Add(time.Hour)},
		{"At past", sidekiq.At(t0.Add(-time.Hour)), false, time.Time{}},
		{"At now", sidekiq.At(t0), false, time.Time{}},
		{"In zero", sidekiq.In(0), false, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, rdb redis.UniversalClient) {
				ctx := context.Background()
				client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Clock: testutil.NewFakeClock(t0)})
				jid, err := client.Push(ctx, "ReportWorker", nil, tc.opt)
				if err != nil {
					t.Fatal(err)
				}
				qlen, _ := rdb.LLen(ctx, "queue:default").Result()
				if !tc.scheduled {
					if qlen != 1 || zcard(t, rdb, "schedule") != 0 {
						t.Fatalf("queue holds %d, schedule %d; want pushed at once", qlen, zcard(t, rdb, "schedule"))
					}
					return
				}
				if qlen != 0 {
					t.Fatalf("queue holds %d jobs, want 0", qlen)
				}
				entries, err := testutil.Scheduled(ctx, rdb, "", "schedule")
				if err != nil || len(entries) != 1 {
					t.Fatalf("schedule = %v, %v", entries, err)
				}
				e := entries[0]
				if e.JID != jid || !sameInstant(e.At, tc.runAt) {
					t.Fatalf("scheduled %s at %v, want %s at %v", e.JID, e.At, jid, tc.runAt)
				}
				if _, has := payloadOf(t, string(e.Raw()))["enqueued_at"]; has {
					t.Fatalf("scheduled payload has enqueued_at: %s", e.Raw())
				}
				if string(e.Args) != "[]" {
					t.Fatalf("nil args written as %s, want []", e.Args)
				}
			})
		})
	}
}

// TestPushOptions: each option sets its payload key.
func TestPushOptions(t *testing.T) {
	t.Parallel()
	const customJID = "0123456789abcdef01234567"
	cases := []struct {
		name  string
		opts  []sidekiq.PushOption
		queue string
		want  map[string]any
	}{
		{"Queue", []sidekiq.PushOption{sidekiq.Queue("critical")}, "critical", map[string]any{"queue": "critical", "retry": true}},
		{"Retry", []sidekiq.PushOption{sidekiq.Retry(3)}, "default", map[string]any{"retry": 3.0}},
		{"Retry0", []sidekiq.PushOption{sidekiq.Retry(0)}, "default", map[string]any{"retry": 0.0}},
		{"NoRetry", []sidekiq.PushOption{sidekiq.NoRetry()}, "default", map[string]any{"retry": false}},
		{"JID", []sidekiq.PushOption{sidekiq.JID(customJID)}, "default", map[string]any{"jid": customJID}},
		{"RetryQueue", []sidekiq.PushOption{sidekiq.RetryQueue("slow")}, "default", map[string]any{"retry_queue": "slow"}},
		{"Extra", []sidekiq.PushOption{sidekiq.Extra("tags", []string{"a", "b"}), sidekiq.Extra("backtrace", 5)}, "default",
			map[string]any{"tags": []any{"a", "b"}, "backtrace": 5.0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb, _ := testutil.NewEmbeddedRedis(t)
			client := sidekiq.NewClient(rdb, nil)
			jid, err := client.Push(context.Background(), "OptWorker", []any{1}, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			p := payloadOf(t, onlyMember(t, rdb, "queue:"+tc.queue, false))
			if p["jid"] != jid {
				t.Fatalf("Push returned %s, payload jid %v", jid, p["jid"])
			}
			for k, v := range tc.want {
				got, _ := json.Marshal(p[k])
				exp, _ := json.Marshal(v)
				if string(got) != string(exp) {
					t.Errorf("%s = %s, want %s", k, got, exp)
				}
			}
		})
	}
}

// TestPushRefusesBadInput: Extra("at") and an empty class are errors and write nothing.
func TestPushRefusesBadInput(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	client := sidekiq.NewClient(rdb, nil)
	ctx := context.Background()
	if _, err := client.Push(ctx, "W", nil, sidekiq.Extra("at", 1)); err == nil {
		t.Fatal(`Extra("at") accepted`)
	}
	if _, err := client.Push(ctx, "", nil); err == nil {
		t.Fatal("empty class accepted")
	}
	if n, _ := rdb.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("%d keys written", n)
	}
}

// TestPushNamespace: the namespace prefixes keys but not the queue name stored in the queues
// set or in the payload.
func TestPushNamespace(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "myapp", Clock: testutil.NewFakeClock(t0)})
		if _, err := client.Push(ctx, "W", []any{1}, sidekiq.Queue("mail")); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Push(ctx, "W", []any{2}, sidekiq.In(time.Minute)); err != nil {
			t.Fatal(err)
		}
		keys, err := rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k != "myapp:queues" && k != "myapp:queue:mail" && k != "myapp:schedule" {
				t.Errorf("unexpected key %q", k)
			}
		}
		if len(keys) != 3 {
			t.Fatalf("keys = %v", keys)
		}
		if q, _ := rdb.SMembers(ctx, "myapp:queues").Result(); len(q) != 1 || q[0] != "mail" {
			t.Fatalf("queues set = %v, want [mail]", q)
		}
		p := payloadOf(t, onlyMember(t, rdb, "myapp:queue:mail", false))
		if p["queue"] != "mail" {
			t.Fatalf("payload queue = %v, want mail", p["queue"])
		}
		testutil.RequireEnqueued(t, rdb, "myapp", "mail", "W", []any{1})
		testutil.RequireScheduled(t, rdb, "myapp", "W", []any{2}, t0.Add(time.Minute), time.Millisecond)
	})
}

// TestPushStoppedByMiddleware: a push middleware that returns *PushStoppedError or does not
// call next stops the push: nothing is written and the error matches ErrPushStopped.
func TestPushStoppedByMiddleware(t *testing.T) {
	t.Parallel()
	const held = "aaaaaaaaaaaaaaaaaaaaaaaa"
	cases := []struct {
		name    string
		mw      sidekiq.PushFunc
		wantJID string
	}{
		{"PushStoppedError", func(context.Context, *sidekiq.Job, func(context.Context) error) error {
			return &sidekiq.PushStoppedError{JID: held, Reason: "unique lock held"}
		}, held},
		{"no next", func(context.Context, *sidekiq.Job, func(context.Context) error) error {
			return nil
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, rdb redis.UniversalClient) {
				ctx := context.Background()
				client := sidekiq.NewClient(rdb, nil)
				client.Use(tc.mw)
				for _, opt := range []sidekiq.PushOption{nil, sidekiq.In(time.Hour)} {
					jid, err := client.Push(ctx, "W", []any{1}, opt)
					if !errors.Is(err, sidekiq.ErrPushStopped) {
						t.Fatalf("err = %v, want ErrPushStopped", err)
					}
					if jid != tc.wantJID {
						t.Fatalf("jid = %q, want %q", jid, tc.wantJID)
					}
				}
				jids, err := client.PushBulk(ctx, "W", [][]any{{1}, {2}})
				if err != nil || len(jids) != 2 || jids[0] != "" || jids[1] != "" {
					t.Fatalf("PushBulk = %q, %v; want two empty jids", jids, err)
				}
				if n, _ := rdb.DBSize(ctx).Result(); n != 0 {
					t.Fatalf("%d keys written by stopped pushes", n)
				}
			})
		})
	}
}

// TestPushMiddlewareChangesJob: a middleware that changes the job and calls next has its
// change written.
func TestPushMiddlewareChangesJob(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	client := sidekiq.NewClient(rdb, nil)
	client.Use(sidekiq.PushFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
		if err := job.Set("tenant", "acme"); err != nil {
			return err
		}
		return next(ctx)
	}))
	if _, err := client.Push(context.Background(), "W", nil); err != nil {
		t.Fatal(err)
	}
	if p := payloadOf(t, onlyMember(t, rdb, "queue:default", false)); p["tenant"] != "acme" {
		t.Fatalf("tenant = %v", p["tenant"])
	}
}

var jidPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// TestPushBulkJIDsInOrder: PushBulk returns one distinct 24-hex jid per job, in the order
// of argsList, and the queue holds the jobs in that order.
func TestPushBulkJIDsInOrder(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{BulkBatchSize: 7})
		const n = 50
		argsList := make([][]any, n)
		for i := range argsList {
			argsList[i] = []any{i}
		}
		jids, err := client.PushBulk(ctx, "BulkWorker", argsList)
		if err != nil {
			t.Fatal(err)
		}
		if len(jids) != n {
			t.Fatalf("%d jids for %d jobs", len(jids), n)
		}
		seen := make(map[string]bool, n)
		for _, j := range jids {
			if !jidPattern.MatchString(j) || seen[j] {
				t.Fatalf("jid %q malformed or repeated", j)
			}
			seen[j] = true
		}
		jobs, err := testutil.Enqueued(ctx, rdb, "", "default")
		if err != nil || len(jobs) != n {
			t.Fatalf("queue holds %d jobs, %v", len(jobs), err)
		}
		for i, job := range jobs {
			var arg int
			if err := job.DecodeArgs(&arg); err != nil {
				t.Fatal(err)
			}
			if job.JID != jids[arg] {
				t.Fatalf("job with arg %d has jid %s, PushBulk said %s", arg, job.JID, jids[arg])
			}
			if arg != i {
				t.Fatalf("queue position %d holds arg %d", i, arg)
			}
		}
	})
}

// TestPushBulkRoundTrips: 100,000 jobs take one MULTI/EXEC per batch of 1000, about 100
// round trips, not one per job.
func TestPushBulkRoundTrips(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 100,000 jobs")
	}
	t.Parallel()
	rdb := testsuite.RealRedis(t).Client
	counter := &testsuite.RoundTrips{}
	rdb.AddHook(counter)
	ctx := context.Background()
	const n = 100_000
	argsList := make([][]any, n)
	for i := range argsList {
		argsList[i] = []any{i}
	}
	jids, err := sidekiq.NewClient(rdb, nil).PushBulk(ctx, "BulkWorker", argsList)
	if err != nil {
		t.Fatal(err)
	}
	trips := counter.N()
	if trips > 110 {
		t.Fatalf("%d round trips for %d jobs, want at most 110", trips, n)
	}
	if trips < n/1000 {
		t.Fatalf("%d round trips counted, fewer than the batches: the hook does not count", trips)
	}
	if got, _ := rdb.LLen(ctx, "queue:default").Result(); got != n || len(jids) != n || jids[n-1] == "" {
		t.Fatalf("queue holds %d, %d jids", got, len(jids))
	}
	t.Logf("%d jobs in %d round trips", n, trips)
}

// TestPushBulkOptions: JID applies to the first job only, and In sends every job to the
// schedule set at the same score.
func TestPushBulkOptions(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		const first = "0123456789abcdef01234567"
		client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Clock: testutil.NewFakeClock(t0)})
		jids, err := client.PushBulk(ctx, "W", [][]any{{1}, {2}, {3}}, sidekiq.JID(first), sidekiq.In(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if jids[0] != first || jids[1] == first || jids[2] == first || jids[1] == jids[2] {
			t.Fatalf("jids = %q", jids)
		}
		entries, err := testutil.Scheduled(ctx, rdb, "", "schedule")
		if err != nil || len(entries) != 3 {
			t.Fatalf("schedule holds %d, %v", len(entries), err)
		}
		for _, e := range entries {
			if !sameInstant(e.At, t0.Add(time.Minute)) || !e.EnqueuedAt.IsZero() {
				t.Fatalf("%s at %v, enqueued_at %v", e.JID, e.At, e.EnqueuedAt)
			}
		}
		if n, _ := rdb.LLen(ctx, "queue:default").Result(); n != 0 {
			t.Fatalf("queue holds %d", n)
		}
	})
}
