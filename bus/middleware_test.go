package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// SyncInputs are the named inputs of the sync_account subscription.
type SyncInputs struct {
	AccountID int64  `json:"account_id"`
	Mode      string `json:"mode" default:"full"`
}

func (in SyncInputs) Validate() error {
	if in.AccountID <= 0 {
		return middleware.Invalid("account_id", "must be positive, got %d", in.AccountID)
	}
	return nil
}

// TestSubscribersComposeWithMiddleware: a subscriber takes typed named inputs (defaults,
// validation), runs under a worker lock on its account (one at a time per account, the
// others rescheduled without a retry, their wait count kept in the payload) and is logged
// by middleware.Logging under its subscription's class name.
func TestSubscribersComposeWithMiddleware(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	ctx := context.Background()
	core, logs := observer.New(zapcore.InfoLevel)
	logging := middleware.Logging(zap.New(core))

	var contended atomic.Int64
	countHeld := sidekiq.RunFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
		err := next(ctx)
		if errors.Is(err, locks.ErrWorkerLockHeld) {
			contended.Add(1)
		}
		return err
	})
	wlock := locks.WorkerLock(db.Client, locks.Inputs("account_id"), locks.Backoff(20*time.Millisecond, 100*time.Millisecond))

	var mu sync.Mutex
	running := map[int64]int{}
	var overlap atomic.Bool
	var runs []SyncInputs
	firstHolds := make(chan struct{})
	var firstOnce sync.Once
	rec := newRecorder()
	sync := bus.Inputs(func(ctx context.Context, ev *bus.Event, in SyncInputs) error {
		mu.Lock()
		running[in.AccountID]++
		if running[in.AccountID] > 1 {
			overlap.Store(true)
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			running[in.AccountID]--
			runs = append(runs, in)
			mu.Unlock()
			rec.add(ev)
		}()
		middleware.Logger(ctx).Info("syncing", zap.Int64("account", in.AccountID))
		if in.AccountID == 1 {
			// The first run for account 1 holds its lock until another has found it held.
			first := false
			firstOnce.Do(func() { first = true })
			if first {
				deadline := time.After(30 * time.Second)
				for contended.Load() == 0 {
					select {
					case <-deadline:
						return errors.New("no contention seen")
					case <-time.After(5 * time.Millisecond):
					}
				}
				close(firstHolds)
			}
		}
		return nil
	})

	app := bus.NewApp(db.Client, "billing", nil)
	app.Use(logging)
	app.Subscribe("account_changed", sync, bus.Class("SyncAccount"), bus.WithMiddleware(countHeld, wlock))
	if err := app.Register(ctx); err != nil {
		t.Fatal(err)
	}
	srv := sidekiq.NewServer(db.Client, serverConfig(append([]string{bus.IncomingQueue}, app.Queues()...)...))
	if _, err := bus.Attach(srv, app); err != nil {
		t.Fatal(err)
	}
	waits := &rescheduled{}
	srv.Observe(waits)
	client := sidekiq.NewClient(db.Client, nil)
	for _, attrs := range []map[string]any{
		{"account_id": 1}, {"account_id": 1, "mode": "quick"}, {"account_id": 1}, {"account_id": 2}, {"mode": "quick"},
	} {
		if _, err := bus.Publish(ctx, client, "account_changed", attrs); err != nil {
			t.Fatal(err)
		}
	}
	stop := startServer(t, srv)
	select {
	case <-firstHolds:
	case <-time.After(60 * time.Second):
		t.Fatal("the first account-1 run never saw contention")
	}
	rec.waitFor(t, 60*time.Second, "four valid events to run", func() bool { return rec.count("billing/account_changed") == 4 })
	testutil.Eventually(t, 30*time.Second, "the invalid event in the dead set", func() bool {
		return db.Client.ZCard(ctx, "dead").Val() == 1
	})
	stop()

	if overlap.Load() {
		t.Error("two runs for one account overlapped under the worker lock")
	}
	modes := map[string]int{}
	for _, in := range runs {
		modes[in.Mode]++
	}
	if modes["full"] != 3 || modes["quick"] != 1 {
		t.Errorf("modes %v: the default did not apply", modes)
	}
	dead, _ := sidekiq.ParseJobString(db.Client.ZRange(ctx, "dead", 0, -1).Val()[0])
	if dead.ErrorClass != "Ferry::InvalidInputs" || !strings.Contains(dead.ErrorMessage, `input "account_id": must be positive`) || *dead.RetryCount != 0 {
		t.Errorf("the invalid event died with %s: %s after %d retries", dead.ErrorClass, dead.ErrorMessage, *dead.RetryCount)
	}
	if db.Client.ZCard(ctx, "retry").Val() != 0 {
		t.Error("something is in the retry set")
	}
	// Contention rescheduled without failure; the wait count travelled in the payload.
	if f := db.Client.Get(ctx, "stat:failed").Val(); f != "1" {
		t.Errorf("stat:failed = %s, want 1 (the invalid event only)", f)
	}
	var syncing, ends int
	for _, e := range logs.All() {
		f := e.ContextMap()
		if f["class"] != "SyncAccount" {
			continue
		}
		switch e.Message {
		case "syncing":
			syncing++
		case "job end":
			ends++
		}
	}
	if syncing != 4 || ends < 5 || logging.Done() != 4 {
		t.Errorf("Logging: %d handler lines, %d end lines, %d done under class SyncAccount", syncing, ends, logging.Done())
	}
	if contended.Load() == 0 {
		t.Error("no contention")
	}
	if n := waits.maxWaits.Load(); n < 1 {
		t.Errorf("the rescheduled job carried ferry_lock_waits = %d; the worker lock's count did not reach the payload", n)
	}
}

// rescheduled records the largest worker-lock wait count of a rescheduled job, read from
// the job the server wrote back to the schedule.
type rescheduled struct {
	sidekiq.ObserverDefaults
	maxWaits atomic.Int64
}

func (r *rescheduled) JobFinished(ev *sidekiq.JobEvent) {
	if ev.Outcome != sidekiq.OutcomeRescheduled || ev.Job == nil {
		return
	}
	var n int64
	if ok, _ := ev.Job.Get(locks.WaitsKey, &n); ok && n > r.maxWaits.Load() {
		r.maxWaits.Store(n)
	}
}
