package api_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/testutil"
)

func TestStats(t *testing.T) {
	t.Parallel()
	for _, ns := range []string{"", "ns"} {
		testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
			ctx := context.Background()
			p := ""
			if ns != "" {
				p = ns + ":"
			}
			a, _ := newAPI(rdb, ns, 0)
			mustNoErr(t, rdb.Set(ctx, p+"stat:processed", "120", 0).Err())
			mustNoErr(t, rdb.Set(ctx, p+"stat:failed", "7", 0).Err())
			mustNoErr(t, rdb.SAdd(ctx, p+"queues", "default", "low", "empty").Err())
			// Oldest job of default: enqueued 30 s ago (float seconds, Sidekiq 6/7).
			mustNoErr(t, rdb.LPush(ctx, p+"queue:default",
				payload(t, "A", "a1", "default", map[string]any{"enqueued_at": rawNum(secs(t0.Add(-30 * time.Second)))}),
				payload(t, "A", "a2", "default", map[string]any{"enqueued_at": rawNum(secs(t0.Add(-time.Second)))})).Err())
			// low: Sidekiq 8 integer milliseconds, 2 minutes ago.
			mustNoErr(t, rdb.LPush(ctx, p+"queue:low",
				payload(t, "B", "b1", "low", map[string]any{"enqueued_at": t0.Add(-2 * time.Minute).UnixMilli()})).Err())
			mustNoErr(t, rdb.SAdd(ctx, p+"paused", "low").Err())
			zadd(t, rdb, p+"schedule", score(t0.Add(time.Hour)), payload(t, "S", "s1", "default", nil))
			zadd(t, rdb, p+"retry", score(t0.Add(time.Minute)), payload(t, "R", "r1", "default", nil))
			zadd(t, rdb, p+"retry", score(t0.Add(2*time.Minute)), payload(t, "R", "r2", "default", nil))
			zadd(t, rdb, p+"dead", score(t0.Add(-time.Hour)), payload(t, "D", "d1", "default", nil))
			mustNoErr(t, rdb.SAdd(ctx, p+"processes", "host:1:abc", "host:2:def").Err())
			mustNoErr(t, rdb.HSet(ctx, p+"host:1:abc", "info", `{"identity":"host:1:abc"}`, "busy", "3").Err())
			mustNoErr(t, rdb.HSet(ctx, p+"host:2:def", "info", `{"identity":"host:2:def"}`, "busy", "2").Err())

			st, err := a.Stats(ctx)
			mustNoErr(t, err)
			want := api.Stats{Processed: 120, Failed: 7, Scheduled: 1, Retries: 2, Dead: 1, Processes: 2, Busy: 5, Enqueued: 3}
			if st.Processed != want.Processed || st.Failed != want.Failed || st.Scheduled != want.Scheduled ||
				st.Retries != want.Retries || st.Dead != want.Dead || st.Processes != want.Processes ||
				st.Busy != want.Busy || st.Enqueued != want.Enqueued {
				t.Fatalf("stats = %+v, want %+v", *st, want)
			}
			if d := st.DefaultQueueLatency - 30*time.Second; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("default latency %v, want 30s", st.DefaultQueueLatency)
			}
			if len(st.Queues) != 3 {
				t.Fatalf("queues %+v", st.Queues)
			}
			// Largest first, then by name.
			if st.Queues[0].Name != "default" || st.Queues[1].Name != "low" || st.Queues[2].Name != "empty" {
				t.Fatalf("queue order %+v", st.Queues)
			}
			low := st.Queues[1]
			if !low.Paused || low.Size != 1 || low.Latency != 2*time.Minute {
				t.Fatalf("low = %+v, want paused, 1 job, 2m latency (milliseconds read)", low)
			}
			if st.Queues[2].Latency != 0 || st.Queues[0].Paused {
				t.Fatalf("queues %+v", st.Queues)
			}

			qs, err := a.Queues(ctx)
			mustNoErr(t, err)
			if len(qs) != 3 || qs[0].Name != "default" || qs[1].Name != "empty" || qs[2].Name != "low" {
				t.Fatalf("Queues() not by name: %+v", qs)
			}
			ok, err := a.QueueExists(ctx, "empty")
			mustNoErr(t, err)
			if !ok {
				t.Fatal("queue in the queues set reported missing")
			}
			ok, err = a.QueueExists(ctx, "nope")
			mustNoErr(t, err)
			if ok {
				t.Fatal("unknown queue reported present")
			}
		})
	}
}

func TestStatsRoundTrips(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		q := "q" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		mustNoErr(t, rdb.SAdd(ctx, "queues", q).Err())
		mustNoErr(t, rdb.LPush(ctx, "queue:"+q, payload(t, "A", "x", q, nil)).Err())
	}
	rt := &callCounter{}
	rdb.AddHook(rt)
	a, _ := newAPI(rdb, "", 0)
	st, err := a.Stats(ctx)
	mustNoErr(t, err)
	if len(st.Queues) != 50 || st.Enqueued != 50 {
		t.Fatalf("stats %+v", st)
	}
	if n := rt.n.Load(); n != 2 {
		t.Fatalf("Stats took %d round trips for 50 queues, want 2", n)
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "", 0)
		mustNoErr(t, rdb.Set(ctx, "stat:processed:2026-03-04", "10", 0).Err())
		mustNoErr(t, rdb.Set(ctx, "stat:failed:2026-03-04", "2", 0).Err())
		mustNoErr(t, rdb.Set(ctx, "stat:processed:2026-03-02", "5", 0).Err())
		h, err := a.History(ctx, 3, time.Time{})
		mustNoErr(t, err)
		want := []api.DayStat{{"2026-03-04", 10, 2}, {"2026-03-03", 0, 0}, {"2026-03-02", 5, 0}}
		if len(h) != 3 || h[0] != want[0] || h[1] != want[1] || h[2] != want[2] {
			t.Fatalf("history = %+v, want %+v", h, want)
		}
		if _, err := a.History(ctx, 0, time.Time{}); err == nil {
			t.Fatal("0 days accepted")
		}
	})
}

// rawNum is a JSON number written as given.
type rawNum string

func (r rawNum) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// callCounter counts round trips like testsuite.RoundTrips, leaving out the handshake of
// new connections (HELLO, CLIENT SETINFO), which go-redis sends when the pool dials.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *callCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" && cmd.Name() != "client" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *callCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "hello" && cmds[0].Name() != "client" {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
