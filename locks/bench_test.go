package locks_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

// pushClients returns a plain Client and one with a queue lock, both counting round trips.
func pushClients(tb testing.TB) (plain, locked *sidekiq.Client, plainRT, lockedRT *testsuite.RoundTrips, rdb *redis.Client) {
	tb.Helper()
	db := testsuite.RealRedis(tb)
	opts, err := redis.ParseURL(db.URL)
	if err != nil {
		tb.Fatal(err)
	}
	mk := func() (*redis.Client, *testsuite.RoundTrips) {
		c := redis.NewClient(opts)
		rt := &testsuite.RoundTrips{}
		c.AddHook(rt)
		tb.Cleanup(func() { _ = c.Close() })
		return c, rt
	}
	p, prt := mk()
	l, lrt := mk()
	plain = sidekiq.NewClient(p, nil)
	locked = sidekiq.NewClient(l, nil)
	locked.Use(locks.QueueLock(l, locks.Inputs("user_id")))
	return plain, locked, prt, lrt, db.Client
}

// TestQueueLockPushRoundTrips: a push through the queue lock costs the same single round
// trip as a plain push (the lock is taken inside the push's own Lua call), once the script
// is cached in Redis.
func TestQueueLockPushRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain, locked, plainRT, lockedRT, _ := pushClients(t)
	// Warm up: the first push opens the connection, and the first guarded push may need
	// EVAL after EVALSHA's NOSCRIPT.
	for _, c := range []*sidekiq.Client{plain, locked} {
		if _, err := c.Push(ctx, "Report", []any{map[string]any{"user_id": -1}}); err != nil {
			t.Fatal(err)
		}
	}
	plainRT.Reset()
	lockedRT.Reset()
	const n = 200
	for i := range n {
		args := []any{map[string]any{"user_id": i}}
		if _, err := plain.Push(ctx, "Report", args); err != nil {
			t.Fatal(err)
		}
		if _, err := locked.Push(ctx, "Report", args); err != nil {
			t.Fatal(err)
		}
	}
	if p, l := plainRT.N(), lockedRT.N(); p != n || l != n {
		t.Fatalf("%d pushes: %d round trips plain, %d with the queue lock; want %d each", n, p, l, n)
	}
}

// BenchmarkQueueLockPush pushes one job per op to the real Redis, plainly and through a
// queue lock (each op with new inputs, so each takes a new lock).
func BenchmarkQueueLockPush(b *testing.B) {
	ctx := context.Background()
	plain, locked, _, _, rdb := pushClients(b)
	for _, bc := range []struct {
		name string
		c    *sidekiq.Client
	}{{"plain", plain}, {"queue_lock", locked}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := bc.c.Push(ctx, "Report", []any{map[string]any{"user_id": i}}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			rdb.FlushDB(ctx)
		})
	}
}
