package locks_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// The SIGKILL test runs the lock holder in another OS process: the test binary re-runs
// itself as TestHelperLockWorker with lockHelperEnv set.

const lockHelperEnv = "FERRY_LOCKS_HELPER_WORKER"

type lockWorkerSpec struct {
	URL        string
	Lease      time.Duration
	ProcessTTL time.Duration
}

const (
	crashStarted = "lockcrash:started"
	crashDone    = "lockcrash:done"
)

// crashLock is the worker lock of both processes of the SIGKILL test.
func crashLock(rdb redis.UniversalClient, lease time.Duration) *locks.Worker {
	return locks.WorkerLock(rdb, locks.Inputs("account"), locks.Lease(lease), locks.Backoff(50*time.Millisecond, 200*time.Millisecond))
}

func crashConfig(processTTL time.Duration) sidekiq.Config {
	return sidekiq.Config{Concurrency: 2, ProcessTTL: processTTL, RecoverInterval: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond}
}

// TestHelperLockWorker is not a test: it is the worker process TestWorkerLockSIGKILL starts
// and kills. Its handler records the start and then blocks until the process dies.
func TestHelperLockWorker(t *testing.T) {
	raw := os.Getenv(lockHelperEnv)
	if raw == "" {
		t.Skip("helper process of TestWorkerLockSIGKILL; it runs only as its child")
	}
	var spec lockWorkerSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(spec.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	cfg := crashConfig(spec.ProcessTTL)
	srv := sidekiq.NewServer(rdb, &cfg)
	srv.Use(crashLock(rdb, spec.Lease))
	srv.Handle("Sync", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		if err := rdb.RPush(ctx, crashStarted, job.JID).Err(); err != nil {
			return err
		}
		<-ctx.Done() // killed before this returns
		return ctx.Err()
	}))
	if err := srv.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerLockSIGKILL (semantics §9.1): a worker process is killed with SIGKILL while its
// handler holds a worker lock. The lock is left with at most one lease to live and is gone
// within it (no permanent lock); another server recovers the dead process's job (same jid,
// so the leftover lease is contention, not reentry: the job waits without using a retry)
// and runs it once, to completion.
func TestWorkerLockSIGKILL(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const lease = 3 * time.Second
	const processTTL = time.Second // well within the lease: recovery finds the lock still held

	jid, err := sidekiq.NewClient(db.Client, nil).Push(ctx, "Sync", []any{map[string]any{"account": 1}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(lockWorkerSpec{URL: db.URL, Lease: lease, ProcessTTL: processTTL})
	child := testsuite.StartHelperProcess(t, "worker process", "TestHelperLockWorker", lockHelperEnv+"="+string(raw))

	key := workerKey(t, "Sync", `{"account":1}`)
	testutil.Eventually(t, 30*time.Second, "the worker process to start the job", func() bool {
		return db.Client.LLen(ctx, crashStarted).Val() == 1
	})
	if v := db.Client.Get(ctx, key).Val(); v != jid {
		t.Fatalf("worker lock holds %q while the job runs, want %s", v, jid)
	}
	child.Kill(t)
	killed := time.Now()
	if ttl := db.Client.PTTL(ctx, key).Val(); ttl <= 0 || ttl > lease {
		t.Fatalf("lock TTL right after the kill %v, want in (0, %v]: the lock must die within one lease", ttl, lease)
	}

	done := make(chan string, 4)
	cfg := crashConfig(processTTL)
	var contended atomic.Int64
	countHeld := sidekiq.RunFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
		err := next(ctx)
		if errors.Is(err, locks.ErrWorkerLockHeld) && errors.Is(err, sidekiq.ErrRetryIn) {
			contended.Add(1)
		}
		return err
	})
	stop := startServer(t, db.Client, cfg, []sidekiq.Middleware{countHeld, crashLock(db.Client, lease)}, "Sync", func(ctx context.Context, job *sidekiq.Job) error {
		if err := db.Client.RPush(ctx, crashDone, job.JID).Err(); err != nil {
			return err
		}
		done <- job.JID
		return nil
	})
	got := receive(t, done, "the recovered job to run")
	ranAfter := time.Since(killed)
	stop()
	if got != jid {
		t.Fatalf("ran %s, want the recovered %s", got, jid)
	}
	if runs := db.Client.LRange(ctx, crashDone, 0, -1).Val(); len(runs) != 1 {
		t.Fatalf("recovered job ran %d times (%v), want once", len(runs), runs)
	}
	if contended.Load() == 0 {
		t.Fatal("the recovered job got the dead process's lock at once; its leftover lease should have made it wait")
	}
	if db.Client.Exists(ctx, key).Val() != 0 {
		t.Fatal("worker lock left after the recovered job finished")
	}
	for _, k := range []string{"retry", "dead", "schedule", "queue:default"} {
		if db.Client.Exists(ctx, k).Val() != 0 {
			t.Errorf("%s not empty at the end", k)
		}
	}
	if f := db.Client.Get(ctx, "stat:failed").Val(); f != "" && f != "0" {
		t.Errorf("stat:failed = %s, want 0", f)
	}
	t.Logf("recovered job waited %d times and ran %v after the kill (lease %v)", contended.Load(), ranAfter.Round(time.Millisecond), lease)
}
