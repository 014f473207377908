// Command periodic shows periodic jobs: a Ferry server runs a Go handler for a report that
// a periodic.Scheduler enqueues every 2 seconds. The schedule lives in sidekiq-cron's keys,
// so it shows in the Sidekiq Web UI's Cron tab, a Rails app's sidekiq-cron pollers enqueue
// it too (each tick once, whoever gets there first), and it can be disabled from the tab.
// Start the example twice against one Redis: the reports still come once per tick.
//
// With no REDIS_URL it uses an embedded Redis:
//
//	go run ./examples/periodic            # runs until Ctrl-C
//	go run ./examples/periodic -runs 3    # exits after three reports
//	REDIS_URL=redis://127.0.0.1:6379/5 go run ./examples/periodic
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/sidekiq"
)

func main() {
	runs := flag.Int("runs", 0, "exit after this many reports (0: run until Ctrl-C)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv("REDIS_URL"), *runs, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "periodic example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, redisURL string, runs int, out io.Writer) error {
	rdb, cleanup, err := connectRedis(redisURL)
	if err != nil {
		return err
	}
	defer cleanup()
	out = &lockedWriter{w: out}

	// 1. The worker side: a Ferry server with a Go handler for the report.
	reports := make(chan struct{}, 16)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2, Queues: []string{"reports"}})
	srv.Handle("UsageReportJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		var period string
		if err := job.DecodeArgs(&period); err != nil {
			return sidekiq.Discard(err)
		}
		fmt.Fprintf(out, "usage report (%s), jid %s, enqueued %s\n", period, job.JID, job.EnqueuedAt.Format(time.TimeOnly))
		select {
		case reports <- struct{}{}:
		default:
		}
		return nil
	}))

	// 2. The schedule: every 2 seconds, in sidekiq-cron's storage; the server starts the
	// scheduler after its first heartbeat and stops it when it quiets.
	sched := periodic.New(rdb, sidekiq.NewClient(rdb, nil), nil)
	if err := sched.Add(periodic.Job{
		Name:        "usage_report",
		Spec:        "@every 2s",
		Class:       "UsageReportJob",
		Args:        []any{"last 2 seconds"},
		Queue:       "reports",
		Description: "examples/periodic",
	}); err != nil {
		return err
	}
	periodic.Attach(srv, sched)
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer stopWithin(srv.Stop, 10*time.Second)
	fmt.Fprintln(out, "scheduled usage_report @every 2s; Ctrl-C to stop")

	for n := 0; runs == 0 || n < runs; n++ {
		select {
		case <-reports:
		case <-ctx.Done():
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("no report for 30 s")
		}
	}
	jobs, err := periodic.List(ctx, rdb, "")
	if err != nil {
		return err
	}
	for _, j := range jobs {
		fmt.Fprintf(out, "cron job %s: %q %s, last enqueued %s, next %s\n", j.Name, j.Spec, j.Status,
			j.LastEnqueue.Format(time.TimeOnly), j.Next.Format(time.TimeOnly))
	}
	return nil
}

// connectRedis uses url, or an embedded Redis when it is empty.
func connectRedis(url string) (redis.UniversalClient, func(), error) {
	if url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, fmt.Errorf("REDIS_URL: %w", redact.Error(err, url))
		}
		rdb := redis.NewClient(opts)
		return rdb, func() { rdb.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { rdb.Close(); mr.Close() }, nil
}

// stopWithin calls stop with a context that ends after d, independent of the run's
// (possibly cancelled) context.
func stopWithin(stop func(context.Context) error, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = stop(ctx)
}

// lockedWriter serializes writes from the handler goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
