package locks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// lockKey is the queue lock key of class with inputs in, as a Ruby producer would compute it.
func lockKey(t *testing.T, class, in string) string {
	t.Helper()
	return locks.Key(class, inputsOf(t, in), nil)
}

func newClient(rdb redis.UniversalClient, ns string, opts ...locks.QueueOption) *sidekiq.Client {
	c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: ns})
	c.Use(locks.QueueLock(rdb, append(opts, locks.RedisNamespace(ns))...))
	return c
}

// enqueued returns the jobs in queue "default" under namespace ns.
func enqueued(t *testing.T, rdb redis.UniversalClient, ns string) []*sidekiq.Job {
	t.Helper()
	jobs, err := testutil.Enqueued(context.Background(), rdb, testutil.Namespace(ns), "default")
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func TestQueueLockPush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	user7 := []any{map[string]any{"user_id": 7, "locale": "en"}}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Run("identical pushes collapse to one job", func(t *testing.T) {
			c := newClient(rdb, "q1")
			first, err := c.Push(ctx, "Report", user7)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				jid, err := c.Push(ctx, "Report", []any{map[string]any{"locale": "fr", "user_id": 7}})
				var held *sidekiq.PushStoppedError
				if !errors.Is(err, sidekiq.ErrPushStopped) || !errors.As(err, &held) || jid != first || held.JID != first {
					t.Fatalf("duplicate push %d: jid %q err %v; want holder %q and ErrPushStopped", i, jid, err, first)
				}
			}
			jobs := enqueued(t, rdb, "q1")
			if len(jobs) != 1 {
				t.Fatalf("queue holds %d jobs, want 1", len(jobs))
			}
			key := lockKey(t, "Report", `{"user_id":7}`)
			var recorded string
			if _, err := jobs[0].Get(locks.PayloadKey, &recorded); err != nil || recorded != key {
				t.Fatalf("payload %s = %q (%v), want %q", locks.PayloadKey, recorded, err, key)
			}
			if v := rdb.Get(ctx, "q1:"+key).Val(); v != first {
				t.Fatalf("lock %s holds %q, want %q", key, v, first)
			}
			if ttl := rdb.PTTL(ctx, "q1:"+key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
				t.Fatalf("lock TTL %v, want about 1h", ttl)
			}
		})
		t.Run("different inputs or classes do not collapse", func(t *testing.T) {
			c := newClient(rdb, "q2")
			for _, p := range []struct {
				class string
				args  []any
			}{{"Report", user7}, {"Report", []any{map[string]any{"user_id": 8}}}, {"Report", []any{map[string]any{"user_id": "7"}}}, {"Invoice", user7}} {
				if _, err := c.Push(ctx, p.class, p.args); err != nil {
					t.Fatalf("push %v: %v", p, err)
				}
			}
			if n := len(enqueued(t, rdb, "q2")); n != 4 {
				t.Fatalf("queue holds %d jobs, want 4", n)
			}
		})
		t.Run("shared namespace and chosen inputs collapse across classes", func(t *testing.T) {
			c := newClient(rdb, "q3", locks.Namespace("user_calc"), locks.Inputs("user_id"))
			first, err := c.Push(ctx, "A", []any{map[string]any{"user_id": 7, "note": "x"}})
			if err != nil {
				t.Fatal(err)
			}
			jid, err := c.Push(ctx, "B", []any{map[string]any{"user_id": 7, "note": "y"}})
			if !errors.Is(err, sidekiq.ErrPushStopped) || jid != first {
				t.Fatalf("push of B: jid %q err %v; want holder %q", jid, err, first)
			}
		})
		t.Run("re-push by the holder's jid passes", func(t *testing.T) {
			c := newClient(rdb, "q4")
			jid, err := c.Push(ctx, "Report", user7)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Push(ctx, "Report", user7, sidekiq.JID(jid), sidekiq.In(time.Minute)); err != nil {
				t.Fatalf("re-push by the same jid: %v", err)
			}
			if n := rdb.ZCard(ctx, "q4:schedule").Val(); n != 1 {
				t.Fatalf("schedule holds %d jobs, want 1", n)
			}
		})
		t.Run("scheduled push's lock covers the delay", func(t *testing.T) {
			c := newClient(rdb, "q5", locks.TTL(time.Minute))
			if _, err := c.Push(ctx, "Report", user7, sidekiq.In(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			key := "q5:" + lockKey(t, "Report", `{"user_id":7}`)
			if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 2*time.Hour || ttl > 2*time.Hour+time.Minute {
				t.Fatalf("lock TTL %v, want in (2h, 2h1m]", ttl)
			}
			if _, err := c.Push(ctx, "Report", user7); !errors.Is(err, sidekiq.ErrPushStopped) {
				t.Fatalf("immediate duplicate of a scheduled job: err %v, want ErrPushStopped", err)
			}
		})
		t.Run("error policy", func(t *testing.T) {
			c := newClient(rdb, "q6", locks.OnConflict(locks.Error))
			first, err := c.Push(ctx, "Report", user7)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Push(ctx, "Report", user7)
			var locked *locks.QueueLockedError
			if !errors.Is(err, locks.ErrQueueLocked) || errors.Is(err, sidekiq.ErrPushStopped) || !errors.As(err, &locked) || locked.Holder != first {
				t.Fatalf("duplicate push: err %v; want a QueueLockedError held by %s, not ErrPushStopped", err, first)
			}
			if n := len(enqueued(t, rdb, "q6")); n != 1 {
				t.Fatalf("queue holds %d jobs, want 1", n)
			}
		})
		t.Run("replace policy", func(t *testing.T) {
			c := newClient(rdb, "q7", locks.OnConflict(locks.Replace))
			if _, err := c.Push(ctx, "Report", user7); err != nil {
				t.Fatal(err)
			}
			second, err := c.Push(ctx, "Report", user7)
			if err != nil {
				t.Fatalf("replacing push: %v", err)
			}
			if v := rdb.Get(ctx, "q7:"+lockKey(t, "Report", `{"user_id":7}`)).Val(); v != second {
				t.Fatalf("lock holds %q, want the replacing job %q", v, second)
			}
			if n := len(enqueued(t, rdb, "q7")); n != 2 {
				t.Fatalf("queue holds %d jobs, want 2", n)
			}
		})
		t.Run("failed push leaves no lock", func(t *testing.T) {
			c := newClient(rdb, "q8")
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := c.Push(cctx, "Report", user7); err == nil {
				t.Fatal("push with a cancelled context succeeded")
			}
			if n := rdb.Exists(ctx, "q8:"+lockKey(t, "Report", `{"user_id":7}`), "q8:queue:default").Val(); n != 0 {
				t.Fatalf("%d keys written by a failed push, want 0", n)
			}
			if _, err := c.Push(ctx, "Report", user7); err != nil {
				t.Fatalf("push after the failed one: %v", err)
			}
		})
		t.Run("positional args are an error", func(t *testing.T) {
			c := newClient(rdb, "q9")
			if _, err := c.Push(ctx, "Report", []any{7}); !errors.Is(err, locks.ErrNoInputs) {
				t.Fatalf("err %v, want ErrNoInputs", err)
			}
		})
		t.Run("ActiveJob payloads are refused", func(t *testing.T) {
			c := newClient(rdb, "q11")
			env := &sidekiq.Job{Class: sidekiq.ActiveJobWrapperClass, Wrapped: "ReportJob", Args: []byte(`[{"job_class":"ReportJob","job_id":"x","arguments":[7]}]`)}
			if _, err := c.PushJob(ctx, env); !errors.Is(err, locks.ErrActiveJob) {
				t.Fatalf("err %v, want ErrActiveJob", err)
			}
			if n := len(enqueued(t, rdb, "q11")); n != 0 {
				t.Fatalf("queue holds %d jobs, want 0", n)
			}
		})
		t.Run("bulk push collapses identical jobs", func(t *testing.T) {
			c := newClient(rdb, "q12")
			jids, err := c.PushBulk(ctx, "Report", [][]any{user7, user7, {map[string]any{"user_id": 8}}, user7})
			if err != nil {
				t.Fatal(err)
			}
			if jids[0] == "" || jids[1] != "" || jids[2] == "" || jids[3] != "" {
				t.Fatalf("jids %q, want only the first of each identical group pushed", jids)
			}
			if n := len(enqueued(t, rdb, "q12")); n != 2 {
				t.Fatalf("queue holds %d jobs, want 2", n)
			}
		})
		t.Run("classes filter", func(t *testing.T) {
			c := newClient(rdb, "q10", locks.Classes("Report"))
			for i := 0; i < 2; i++ {
				if _, err := c.Push(ctx, "Other", []any{7}); err != nil {
					t.Fatalf("push of an unlocked class: %v", err)
				}
			}
			if n := len(enqueued(t, rdb, "q10")); n != 2 {
				t.Fatalf("queue holds %d jobs, want 2", n)
			}
		})
	})
}
