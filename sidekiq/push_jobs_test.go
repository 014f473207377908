package sidekiq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// PushJobs gives each job its own outcome: one batch holds a plain push, a scheduled one,
// one whose guard is held, one Redis refuses, one stopped by middleware and a nil job.
// The refused one does not stop the others, and leaves no guard behind.
func TestPushJobsOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		c := sidekiq.NewClient(rdb, nil)
		c.Use(sidekiq.PushFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
			if job.Class == "Dropped" {
				return nil
			}
			return next(ctx)
		}))
		marker := func(jid string) []sidekiq.PushGuard {
			return []sidekiq.PushGuard{{Key: "m:" + jid, TTL: time.Minute}}
		}
		if err := rdb.Set(ctx, "m:held", "held", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, "queue:bad", "not a list", 0).Err(); err != nil {
			t.Fatal(err)
		}
		// The script may not be cached: PushJobs falls back to EVAL.
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(time.Hour)
		pushes := []sidekiq.JobPush{
			{Job: &sidekiq.Job{Class: "Plain", JID: "plain"}, Guards: marker("plain")},
			{Job: &sidekiq.Job{Class: "Later", JID: "later"}, At: at, Guards: marker("later")},
			{Job: &sidekiq.Job{Class: "Held", JID: "held"}, Guards: marker("held")},
			{Job: &sidekiq.Job{Class: "Refused", JID: "refused", Queue: "bad"}, Guards: marker("refused")},
			{Job: &sidekiq.Job{Class: "Dropped", JID: "dropped"}},
			{Job: nil},
			{Job: &sidekiq.Job{Class: "NoJID"}, At: time.Now().Add(-time.Minute)},
		}
		res, err := c.PushJobs(ctx, pushes)
		if err != nil {
			t.Fatalf("PushJobs: %v", err)
		}
		if len(res) != len(pushes) {
			t.Fatalf("%d results for %d pushes", len(res), len(pushes))
		}
		var held *sidekiq.PushStoppedError
		var reply redis.Error
		checks := []struct {
			name string
			ok   bool
		}{
			{"plain pushed", res[0].Err == nil && res[0].JID == "plain"},
			{"scheduled pushed", res[1].Err == nil},
			{"held guard reported", errors.As(res[2].Err, &held) && held.Key == "m:held" && held.JID == "held"},
			{"refusal is a Redis reply", errors.As(res[3].Err, &reply) && !errors.Is(res[3].Err, sidekiq.ErrNoReply)},
			{"middleware stop", errors.Is(res[4].Err, sidekiq.ErrPushStopped)},
			{"nil job", res[5].Err != nil && res[5].JID == ""},
			{"jid filled, past At pushed now", res[6].Err == nil && res[6].JID != ""},
		}
		for _, c := range checks {
			if !c.ok {
				t.Errorf("%s: results %+v", c.name, res)
			}
		}
		queued := map[string]bool{}
		for _, p := range rdb.LRange(ctx, "queue:default", 0, -1).Val() {
			j, err := sidekiq.ParseJobString(p)
			if err != nil {
				t.Fatal(err)
			}
			if j.EnqueuedAt.IsZero() {
				t.Errorf("job %s has no enqueued_at", j.JID)
			}
			queued[j.JID] = true
		}
		if len(queued) != 2 || !queued["plain"] || !queued[res[6].JID] {
			t.Errorf("queue:default holds %v, want plain and %s", queued, res[6].JID)
		}
		sched := rdb.ZRangeWithScores(ctx, "schedule", 0, -1).Val()
		if len(sched) != 1 || int64(sched[0].Score) != at.Unix() {
			t.Errorf("schedule holds %v, want the later job at %v", sched, at.Unix())
		}
		if v := rdb.Get(ctx, "m:plain").Val(); v != "plain" {
			t.Errorf("marker of plain holds %q", v)
		}
		if n := rdb.Exists(ctx, "m:refused").Val(); n != 0 {
			t.Error("the refused push left its guard set")
		}
		// Pushing the same batch again: every guarded job is now held.
		res, err = c.PushJobs(ctx, pushes[:2])
		if err != nil || !errors.Is(res[0].Err, sidekiq.ErrPushStopped) || !errors.Is(res[1].Err, sidekiq.ErrPushStopped) {
			t.Fatalf("second delivery: %+v, %v", res, err)
		}
	})
}

// With no Redis to answer, every job's error and the call's error match ErrNoReply.
func TestPushJobsNoReply(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	c := sidekiq.NewClient(rdb, nil)
	res, err := c.PushJobs(context.Background(), []sidekiq.JobPush{
		{Job: &sidekiq.Job{Class: "A"}},
		{Job: &sidekiq.Job{Class: "B"}, Guards: []sidekiq.PushGuard{{Key: "m:b", TTL: time.Minute}}},
	})
	if !errors.Is(err, sidekiq.ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	for i, r := range res {
		if !errors.Is(r.Err, sidekiq.ErrNoReply) {
			t.Errorf("job %d: %v, want ErrNoReply", i, r.Err)
		}
	}
}

// PushJobs of many guarded jobs is one pipelined round trip once the script is cached.
func TestPushJobsOneRoundTrip(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		counter := &testsuite.RoundTrips{}
		rdb.AddHook(counter)
		c := sidekiq.NewClient(rdb, nil)
		ctx := context.Background()
		// Warm the script cache, so the batch needs no EVAL fallback.
		if _, err := c.PushJobs(ctx, []sidekiq.JobPush{{Job: &sidekiq.Job{Class: "W"}}}); err != nil {
			t.Fatal(err)
		}
		counter.Reset()
		pushes := make([]sidekiq.JobPush, 300)
		for i := range pushes {
			pushes[i] = sidekiq.JobPush{Job: &sidekiq.Job{Class: "W"}, Guards: []sidekiq.PushGuard{{Key: "m:" + sidekiq.NewJID(), TTL: time.Minute}}}
		}
		if _, err := c.PushJobs(ctx, pushes); err != nil {
			t.Fatal(err)
		}
		if n := counter.N(); n != 1 {
			t.Fatalf("%d round trips, want one pipeline", n)
		}
		if n := rdb.LLen(ctx, "queue:default").Val(); n != 301 {
			t.Fatalf("queue holds %d jobs, want 301", n)
		}
	})
}
