package sidekiq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// guardWith is a push middleware that attaches guards to every push.
func guardWith(g ...sidekiq.PushGuard) sidekiq.PushFunc {
	return func(ctx context.Context, _ *sidekiq.Job, next func(context.Context) error) error {
		return next(sidekiq.WithPushGuards(ctx, g...))
	}
}

func TestPushGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lock := sidekiq.PushGuard{Key: "ferry:lock:x", TTL: time.Minute, Reentrant: true}
	marker := sidekiq.PushGuard{Key: "ferry:marker:x", TTL: time.Minute}

	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Run("held guard stops the push and names the holder", func(t *testing.T) {
			c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g1"})
			c.Use(guardWith(lock))
			first, err := c.Push(ctx, "W", []any{1})
			if err != nil {
				t.Fatalf("first push: %v", err)
			}
			holder, err := c.Push(ctx, "W", []any{1})
			var held *sidekiq.PushStoppedError
			if !errors.As(err, &held) || !errors.Is(err, sidekiq.ErrPushStopped) {
				t.Fatalf("second push: err = %v, want a PushStoppedError matching ErrPushStopped", err)
			}
			if holder != first || held.JID != first || held.Key != lock.Key {
				t.Fatalf("second push: holder %q, err %+v; want holder %q", holder, held, first)
			}
			if n := rdb.LLen(ctx, "g1:queue:default").Val(); n != 1 {
				t.Fatalf("queue holds %d jobs, want 1", n)
			}
			if v := rdb.Get(ctx, "g1:"+lock.Key).Val(); v != first {
				t.Fatalf("guard key holds %q, want %q", v, first)
			}
			if ttl := rdb.PTTL(ctx, "g1:"+lock.Key).Val(); ttl <= 0 || ttl > time.Minute {
				t.Fatalf("guard TTL %v, want in (0, 1m]", ttl)
			}
		})
		t.Run("reentrant guard lets its own jid through, marker does not", func(t *testing.T) {
			c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g2"})
			c.Use(guardWith(lock))
			jid, err := c.Push(ctx, "W", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Push(ctx, "W", nil, sidekiq.JID(jid), sidekiq.In(time.Hour)); err != nil {
				t.Fatalf("re-push by the same jid: %v", err)
			}
			if n := rdb.ZCard(ctx, "g2:schedule").Val(); n != 1 {
				t.Fatalf("schedule holds %d jobs, want 1", n)
			}
			m := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g2"})
			m.Use(guardWith(marker))
			if _, err := m.Push(ctx, "W", nil, sidekiq.JID(jid)); err != nil {
				t.Fatal(err)
			}
			_, err = m.Push(ctx, "W", nil, sidekiq.JID(jid))
			if !errors.Is(err, sidekiq.ErrPushStopped) {
				t.Fatalf("second delivery of the same jid: err = %v, want ErrPushStopped", err)
			}
		})
		t.Run("replace takes the guard over", func(t *testing.T) {
			c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g3"})
			c.Use(guardWith(lock))
			if _, err := c.Push(ctx, "W", nil); err != nil {
				t.Fatal(err)
			}
			r := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g3"})
			replace := lock
			replace.Replace = true
			r.Use(guardWith(replace))
			jid, err := r.Push(ctx, "W", nil)
			if err != nil {
				t.Fatalf("replacing push: %v", err)
			}
			if v := rdb.Get(ctx, "g3:"+lock.Key).Val(); v != jid {
				t.Fatalf("guard key holds %q, want the replacing job %q", v, jid)
			}
		})
		t.Run("bulk: one guarded job per key, unguarded jobs in the same batch", func(t *testing.T) {
			c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g4", BulkBatchSize: 3})
			c.Use(guardOdd)
			jids, err := c.PushBulk(ctx, "W", [][]any{{0}, {1}, {2}, {3}, {4}, {5}})
			if err != nil {
				t.Fatal(err)
			}
			// Odd args share one guard key: only the first of them (args 1) is pushed.
			for i, jid := range jids {
				if want := i%2 == 0 || i == 1; (jid != "") != want {
					t.Fatalf("job %d: jid %q, pushed = %v, want %v", i, jid, jid != "", want)
				}
			}
			if n := rdb.LLen(ctx, "g4:queue:default").Val(); n != 4 {
				t.Fatalf("queue holds %d jobs, want 4", n)
			}
		})
		t.Run("a push Redis refuses leaves no guard", func(t *testing.T) {
			c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g6"})
			c.Use(guardWith(marker))
			rdb.Set(ctx, "g6:queue:default", "not a list", 0)
			if _, err := c.Push(ctx, "W", nil); err == nil || errors.Is(err, sidekiq.ErrPushStopped) {
				t.Fatalf("push onto a string key: err = %v, want Redis's refusal", err)
			}
			if n := rdb.Exists(ctx, "g6:"+marker.Key).Val(); n != 0 {
				t.Fatal("the guard was set although the push failed: a retry would now be skipped")
			}
		})
		t.Run("invalid guard is an error, nothing written", func(t *testing.T) {
			c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "g5"})
			c.Use(guardWith(sidekiq.PushGuard{Key: "k"}))
			if _, err := c.Push(ctx, "W", nil); err == nil || errors.Is(err, sidekiq.ErrPushStopped) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			if n := rdb.Exists(ctx, "g5:queue:default", "g5:k").Val(); n != 0 {
				t.Fatalf("%d keys written, want none", n)
			}
		})
	})
}

// guardOdd guards jobs whose first argument is odd with one shared key.
var guardOdd sidekiq.PushFunc = func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	var n int
	if err := job.DecodeArgs(&n); err != nil {
		return err
	}
	if n%2 == 1 {
		ctx = sidekiq.WithPushGuards(ctx, sidekiq.PushGuard{Key: "odd", TTL: time.Minute})
	}
	return next(ctx)
}

// TestGuardedPushAfterScriptFlush: a Client sends the guarded-push script by EVALSHA once it
// has run it; when Redis has lost the script (a restart, SCRIPT FLUSH) the push is sent
// again by EVAL, in one more round trip, and nothing is lost or pushed twice. It runs on the
// embedded Redis only: SCRIPT FLUSH on the shared real Redis would disturb the round-trip
// counts of tests running beside it.
func TestGuardedPushAfterScriptFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	{
		rdb, _ := testutil.NewEmbeddedRedis(t)
		// An unguarded push first, so the connection is set up before counting.
		if _, err := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "gwarm"}).Push(ctx, "W", nil); err != nil {
			t.Fatal(err)
		}
		rt := &testsuite.RoundTrips{}
		rdb.AddHook(rt)
		c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "gflush"})
		c.Use(sidekiq.PushFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
			return next(sidekiq.WithPushGuards(ctx, sidekiq.PushGuard{Key: "ferry:lock:" + job.JID, TTL: time.Minute}))
		}))
		push := func(what string, wantTrips int64) {
			t.Helper()
			rt.Reset()
			jid, err := c.Push(ctx, "W", nil)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got := rt.N(); got != wantTrips {
				t.Errorf("%s: %d round trips, want %d", what, got, wantTrips)
			}
			if v := rdb.Get(ctx, "gflush:ferry:lock:"+jid).Val(); v != jid {
				t.Errorf("%s: guard holds %q, want %q", what, v, jid)
			}
		}
		push("first push (EVAL)", 1)
		push("second push (EVALSHA)", 1)
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		push("push after SCRIPT FLUSH (EVALSHA, then EVAL)", 2)
		push("next push (EVALSHA again)", 1)
		if n := rdb.LLen(ctx, "gflush:queue:default").Val(); n != 4 {
			t.Fatalf("queue holds %d jobs, want 4", n)
		}
	}
}
