package middleware_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// deletedUsers stands in for the source of truth.
var deletedUsers sync.Map

type ReindexInputs struct {
	UserID int64 `json:"user_id"`
}

func (in ReindexInputs) Needed(context.Context, *sidekiq.Job) (bool, error) {
	_, gone := deletedUsers.Load(in.UserID)
	return !gone, nil
}

// Issue #5, check 4: a job no longer needed completes without running: no retry, no dead
// entry, counted as processed in Sidekiq's stats and as skipped by Logging.
func TestSkippedJobCountsAsProcessed(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	rdb := db.Client
	ctx := context.Background()
	deletedUsers.Store(int64(404), true)

	logging := middleware.Logging(nil)
	srv := sidekiq.NewServer(rdb, fastRetries())
	srv.Use(logging)
	var ran sync.Map
	srv.Handle("ReindexWorker", middleware.Inputs(func(_ context.Context, _ *sidekiq.Job, in ReindexInputs) error {
		ran.Store(in.UserID, true)
		return nil
	}))
	for _, id := range []int64{404, 1} {
		if _, err := middleware.Enqueue(ctx, srv.Client(), "ReindexWorker", ReindexInputs{UserID: id}); err != nil {
			t.Fatal(err)
		}
	}
	stop := startServer(t, srv)
	waitFor(t, "both jobs to end", func() bool { return logging.Done()+logging.Skipped() == 2 })
	stop()

	if _, ok := ran.Load(int64(404)); ok {
		t.Fatal("the handler ran for a job that is no longer needed")
	}
	if _, ok := ran.Load(int64(1)); !ok {
		t.Fatal("the needed job did not run")
	}
	if logging.Skipped() != 1 || logging.Done() != 1 || logging.Failed() != 0 {
		t.Fatalf("counters: done %d skipped %d failed %d", logging.Done(), logging.Skipped(), logging.Failed())
	}
	if zcard(t, rdb, "retry") != 0 || zcard(t, rdb, "dead") != 0 || llen(t, rdb, "queue:default") != 0 {
		t.Fatal("the skipped job left something behind")
	}
	processed, err := rdb.Get(ctx, "stat:processed").Int()
	if err != nil || processed != 2 {
		t.Fatalf("stat:processed = %d (%v), want 2: a skipped job counts as processed", processed, err)
	}
	if failed, _ := rdb.Get(ctx, "stat:failed").Int(); failed != 0 {
		t.Fatalf("stat:failed = %d", failed)
	}
}

type reindexer struct {
	needed bool
	err    error
	runs   atomic.Int32
}

func (r *reindexer) Perform(context.Context, *sidekiq.Job) error { r.runs.Add(1); return nil }
func (r *reindexer) Needed(context.Context, *sidekiq.Job) (bool, error) {
	return r.needed, r.err
}

func TestCheckNeededOnHandlers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	job := jobWithArgs(t, "R", `[1]`)

	skip := &reindexer{needed: false}
	h := middleware.CheckNeeded(skip)
	if err := h.Perform(ctx, job); err != nil || skip.runs.Load() != 0 {
		t.Fatalf("unneeded: err %v runs %d", err, skip.runs.Load())
	}
	run := &reindexer{needed: true}
	if err := middleware.CheckNeeded(run).Perform(ctx, job); err != nil || run.runs.Load() != 1 {
		t.Fatalf("needed: err %v runs %d", err, run.runs.Load())
	}
	boom := &reindexer{err: errors.New("db down")}
	if err := middleware.CheckNeeded(boom).Perform(ctx, job); err == nil || boom.runs.Load() != 0 || errors.Is(err, sidekiq.ErrDiscard) {
		t.Fatalf("a failing Needed must fail the job (to be retried): %v", err)
	}
	plain := sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return nil })
	if _, same := middleware.CheckNeeded(plain).(sidekiq.HandlerFunc); !same {
		t.Fatal("a handler without Needed must be returned as it is")
	}
}
