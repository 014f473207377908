package sidekiq_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

func TestServerSmoke(t *testing.T) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	c := sidekiq.NewClient(db.Client, nil)
	const n = 20000
	args := make([][]any, n)
	for i := range args {
		args[i] = []any{i}
	}
	if _, err := c.PushBulk(ctx, "Noop", args); err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 10})
	srv.Handle("Noop", sidekiq.HandlerFunc(func(ctx context.Context, j *sidekiq.Job) error {
		if done.Add(1) == n {
			close(all)
		}
		return nil
	}))
	start := time.Now()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d done", done.Load())
	}
	el := time.Since(start)
	t.Logf("%d jobs in %v = %.0f jobs/s", n, el, float64(n)/el.Seconds())
	// latency
	lat := make(chan time.Duration, 1)
	srv2 := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 10, Queues: []string{"lat"}})
	var pushedAt atomic.Int64
	srv2.Handle("Lat", sidekiq.HandlerFunc(func(ctx context.Context, j *sidekiq.Job) error {
		lat <- time.Since(time.Unix(0, pushedAt.Load()))
		return nil
	}))
	if err := srv2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 5; i++ {
		pushedAt.Store(time.Now().UnixNano())
		if _, err := c.Push(ctx, "Lat", nil, sidekiq.Queue("lat")); err != nil {
			t.Fatal(err)
		}
		t.Logf("latency %v", <-lat)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if err := srv2.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"queue:default", "queue:lat"} {
		if l := db.Client.LLen(ctx, k).Val(); l != 0 {
			t.Fatalf("%s has %d", k, l)
		}
	}
	keys := db.Client.Keys(ctx, "*").Val()
	t.Logf("keys after: %v", keys)
	t.Logf("processed %s", db.Client.Get(ctx, "stat:processed").Val())
}
