// Command quickstart shows Ferry end to end in one process: it pushes jobs from Go in
// Sidekiq's format, shows what Redis now holds (what a Ruby Sidekiq process or the Web UI
// would see), then runs a Ferry server that works them, including a scheduled job and a
// job that fails once and is retried.
//
// With no REDIS_URL it uses an embedded Redis, so it needs nothing installed:
//
//	go run ./examples/quickstart
//
// With REDIS_URL set it uses that Redis (use an empty database: the quick start's keys are
// Sidekiq's real ones):
//
//	REDIS_URL=redis://127.0.0.1:6379/5 go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/sidekiq"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	rdb, where, cleanup, err := connect()
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Fprintln(out, "Redis:", where)

	// 1. Push jobs, as a Go service handing work to Ruby (or to Go) would.
	client := sidekiq.NewClient(rdb, nil)
	jid, err := client.Push(ctx, "HardWorker", []any{"bob", 5, 3.0, map[string]any{"vip": true}})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "pushed HardWorker       jid", jid)
	jids, err := client.PushBulk(ctx, "IndexWorker", [][]any{{1}, {2}, {3}}, sidekiq.Queue("low"))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "pushed 3 × IndexWorker  jids", jids)
	jid, err = client.Push(ctx, "ReportWorker", []any{"daily"}, sidekiq.In(2*time.Second))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "scheduled ReportWorker  jid", jid, "to run in 2s")
	jid, err = client.Push(ctx, "FlakyWorker", nil, sidekiq.Retry(3))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "pushed FlakyWorker      jid", jid, "(fails once, then succeeds)")

	// 2. What a Ruby process or the Web UI now sees.
	fmt.Fprintln(out, "\nIn Redis now:")
	for _, q := range []string{"default", "low"} {
		payloads, err := rdb.LRange(ctx, "queue:"+q, 0, -1).Result()
		if err != nil {
			return err
		}
		for _, p := range payloads {
			fmt.Fprintf(out, "  queue:%-8s %s\n", q, p)
		}
	}
	sched, _ := rdb.ZRangeWithScores(ctx, "schedule", 0, -1).Result()
	for _, z := range sched {
		fmt.Fprintf(out, "  schedule @%.3f %s\n", z.Score, z.Member)
	}

	// 3. Work them with a Ferry server. Handlers run concurrently, so they share out
	// through a lock.
	out = &lockedWriter{w: out}
	var wg sync.WaitGroup
	wg.Add(6)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{
		Concurrency:  5,
		Queues:       []string{"default,2", "low,1"},
		PollInterval: 200 * time.Millisecond, // the fleet default is 5 s
		RetryDelay:   func(int, error, *sidekiq.Job) time.Duration { return time.Second },
	})
	srv.Handle("HardWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		var name string
		var count int
		var ratio float64
		var opts map[string]any
		if err := job.DecodeArgs(&name, &count, &ratio, &opts); err != nil {
			return sidekiq.Discard(err)
		}
		fmt.Fprintf(out, "ran HardWorker(%q, %d, %.1f, %v)\n", name, count, ratio, opts)
		wg.Done()
		return nil
	}))
	srv.Handle("IndexWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		fmt.Fprintf(out, "ran IndexWorker%s\n", job.Args)
		wg.Done()
		return nil
	}))
	srv.Handle("ReportWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		late := time.Since(job.CreatedAt.Add(2 * time.Second)).Round(time.Millisecond)
		fmt.Fprintf(out, "ran ReportWorker%s, scheduled, %v after its time\n", job.Args, late)
		wg.Done()
		return nil
	}))
	var flakyRuns atomic.Int32
	srv.Handle("FlakyWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		if flakyRuns.Add(1) == 1 {
			fmt.Fprintln(out, "ran FlakyWorker: failing once; it goes to the retry set")
			return errors.New("temporary failure")
		}
		fmt.Fprintf(out, "ran FlakyWorker again (retry_count %d): ok\n", *job.RetryCount)
		wg.Done()
		return nil
	}))
	fmt.Fprintln(out, "\nServer", srv.Identity(), "starting")
	if err := srv.Start(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return errors.New("timed out waiting for the jobs")
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Stop(stopCtx); err != nil {
		return err
	}
	processed, _ := rdb.Get(ctx, "stat:processed").Result()
	failed, _ := rdb.Get(ctx, "stat:failed").Result()
	fmt.Fprintf(out, "\nstopped. stat:processed=%s stat:failed=%s, queues empty: %v\n", processed, failed, empty(ctx, rdb))
	return nil
}

func empty(ctx context.Context, rdb redis.UniversalClient) bool {
	n := rdb.LLen(ctx, "queue:default").Val() + rdb.LLen(ctx, "queue:low").Val() +
		rdb.ZCard(ctx, "schedule").Val() + rdb.ZCard(ctx, "retry").Val()
	return n == 0
}

// connect uses REDIS_URL, or starts an embedded Redis when it is unset. The description it
// returns, which the quick start prints, has the URL's password masked.
func connect() (redis.UniversalClient, string, func(), error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, "", nil, fmt.Errorf("REDIS_URL: %w", redact.Error(err, url))
		}
		rdb := redis.NewClient(opts)
		return rdb, redact.URL(url), func() { rdb.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, "", nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, "embedded (set REDIS_URL to use a real Redis)", func() { rdb.Close(); mr.Close() }, nil
}

// lockedWriter serialises writes from concurrent handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
