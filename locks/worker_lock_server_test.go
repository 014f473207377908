package locks_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// startServer starts a server with mws installed in order and stops it when the test
// ends (or earlier, through the returned function).
func startServer(t *testing.T, rdb redis.UniversalClient, cfg sidekiq.Config, mws []sidekiq.Middleware, class string, h sidekiq.HandlerFunc) (stop func()) {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	srv := sidekiq.NewServer(rdb, &cfg)
	for _, m := range mws {
		srv.Use(m)
	}
	srv.Handle(class, h)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := srv.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// scheduledWaits returns the ferry_lock_waits of the single job in the schedule set, or -1.
func scheduledWaits(rdb redis.UniversalClient, ns string) int {
	members := rdb.ZRange(context.Background(), ns+":schedule", 0, -1).Val()
	if len(members) != 1 {
		return -1
	}
	job, err := sidekiq.ParseJobString(members[0])
	if err != nil {
		return -1
	}
	var n int
	if ok, err := job.Get(locks.WaitsKey, &n); !ok || err != nil {
		return -1
	}
	return n
}

// TestWorkerLockKeepsQueueLock: while a job waits for its worker lock (rescheduled again and
// again), its queue lock stays with it, so an identical push is a no-op returning the
// waiting job's jid; whichever order the two locks are installed in. Once the worker lock
// is free the job runs once and its queue lock is released.
func TestWorkerLockKeepsQueueLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	args := []any{map[string]any{"account": 1, "report": 9}}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, order := range []string{"worker lock first", "queue lock first"} {
			t.Run(order, func(t *testing.T) {
				ns := "kq1"
				if order == "queue lock first" {
					ns = "kq2"
				}
				q := locks.QueueLock(rdb, locks.Inputs("report"), locks.RedisNamespace(ns), locks.TTL(time.Minute))
				w := locks.WorkerLock(rdb, locks.Inputs("account"), locks.RedisNamespace(ns), locks.Backoff(20*time.Millisecond, 40*time.Millisecond))
				mws := []sidekiq.Middleware{w, q}
				if order == "queue lock first" {
					mws = []sidekiq.Middleware{q, w}
				}
				client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: ns})
				client.Use(q)
				wkey := ns + ":" + workerKey(t, "Report", `{"account":1}`)
				qkey := ns + ":" + lockKey(t, "Report", `{"report":9}`)
				rdb.Set(ctx, wkey, "running-elsewhere", time.Minute)

				jid, err := client.Push(ctx, "Report", args)
				if err != nil {
					t.Fatal(err)
				}
				runs := make(chan string, 10)
				var heldAtStart atomic.Int64
				stop := startServer(t, rdb, sidekiq.Config{Concurrency: 2, Namespace: ns}, mws, "Report", func(ctx context.Context, job *sidekiq.Job) error {
					heldAtStart.Store(rdb.Exists(ctx, qkey).Val())
					runs <- job.JID
					return nil
				})
				testutil.Eventually(t, 15*time.Second, "the job to be rescheduled twice for its worker lock", func() bool {
					return scheduledWaits(rdb, ns) >= 2
				})
				if v := rdb.Get(ctx, qkey).Val(); v != jid {
					t.Fatalf("queue lock holds %q while the job waits, want %s", v, jid)
				}
				if ttl := rdb.PTTL(ctx, qkey).Val(); ttl <= 0 {
					t.Fatalf("queue lock TTL %v while the job waits", ttl)
				}
				dup, err := client.Push(ctx, "Report", args)
				if !errors.Is(err, sidekiq.ErrPushStopped) || dup != jid {
					t.Fatalf("identical push while the job waits: jid %q err %v; want the waiting job %s and ErrPushStopped", dup, err, jid)
				}

				rdb.Del(ctx, wkey) // the other run ends
				if got := receive(t, runs, "the job to run"); got != jid {
					t.Fatalf("ran %s, want %s", got, jid)
				}
				stop()
				if len(runs) != 0 || heldAtStart.Load() != 0 {
					t.Fatalf("%d extra runs; queue lock present at start %d", len(runs), heldAtStart.Load())
				}
				if n := rdb.Exists(ctx, qkey, wkey, ns+":schedule", ns+":retry", ns+":queue:default").Val(); n != 0 {
					t.Fatalf("%d of the locks, schedule, retry and queue left after the run", n)
				}
			})
		}
	})
}

// commandCounter is a go-redis hook counting every command a client sends, and the lease
// attempts (acquire script runs) per jid.
type commandCounter struct {
	commands atomic.Int64
	mu       sync.Mutex
	attempts map[string]int
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *commandCounter) count(cmd redis.Cmder) {
	c.commands.Add(1)
	if jid, ok := locks.AcquireCall(cmd.Args()); ok {
		c.mu.Lock()
		c.attempts[jid]++
		c.mu.Unlock()
	}
}

// maxAttempts is the most lease attempts one job can make within elapsed under the backoff
// (base, cap): after its n-th contention a job waits at least min(base·2^(n-1), cap)/2.
func maxAttempts(base, maxDelay, elapsed time.Duration) int {
	attempts, spent, d := 1, time.Duration(0), base
	for {
		wait := min(d, maxDelay) / 2
		if spent+wait > elapsed {
			return attempts
		}
		spent += wait
		attempts++
		d = min(d*2, maxDelay)
	}
}

// TestWorkerLockContention (semantics §9.3): 1,000 jobs contend for one worker lock on a
// server running 8 at a time. All complete; no two handlers ever overlap; contention uses
// no retry (no retry_count, nothing in the retry or dead set, stat:failed 0); no job makes
// more lease attempts than the backoff allows in the time the test took, and the Redis
// commands stay within a fixed number per attempt plus the server's own polling.
func TestWorkerLockContention(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const n = 1000
	const base, maxDelay = 5 * time.Millisecond, time.Second
	opts, err := redis.ParseURL(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	counter := &commandCounter{attempts: map[string]int{}}
	srvRDB := redis.NewClient(opts)
	srvRDB.AddHook(counter)
	t.Cleanup(func() { _ = srvRDB.Close() })

	batch := make([][]any, n)
	for i := range batch {
		batch[i] = []any{map[string]any{"account": 1, "n": i}}
	}
	if _, err := sidekiq.NewClient(db.Client, nil).PushBulk(ctx, "Sync", batch); err != nil {
		t.Fatal(err)
	}
	var active, overlaps, withRetryCount, done atomic.Int64
	all := make(chan struct{})
	w := locks.WorkerLock(srvRDB, locks.Inputs("account"), locks.Backoff(base, maxDelay))
	began := time.Now()
	stop := startServer(t, srvRDB, sidekiq.Config{Concurrency: 8}, []sidekiq.Middleware{w}, "Sync", func(ctx context.Context, job *sidekiq.Job) error {
		if active.Add(1) > 1 {
			overlaps.Add(1)
		}
		if job.RetryCount != nil {
			withRetryCount.Add(1)
		}
		time.Sleep(time.Millisecond) // work: lets an overlap show if the lock failed
		active.Add(-1)
		if done.Add(1) == n {
			close(all)
		}
		return nil
	})
	select {
	case <-all:
	case <-time.After(120 * time.Second):
		t.Fatalf("only %d of %d jobs done", done.Load(), n)
	}
	elapsed := time.Since(began)
	stop()

	if overlaps.Load() != 0 || withRetryCount.Load() != 0 {
		t.Fatalf("%d runs overlapped another; %d ran with a retry_count", overlaps.Load(), withRetryCount.Load())
	}
	for _, k := range []string{"retry", "dead", "schedule", "queue:default"} {
		if c := db.Client.Exists(ctx, k).Val(); c != 0 {
			t.Errorf("%s not empty after all jobs ran", k)
		}
	}
	if f := db.Client.Get(ctx, "stat:failed").Val(); f != "" && f != "0" {
		t.Errorf("stat:failed = %s, want 0", f)
	}
	if p := db.Client.Get(ctx, "stat:processed").Val(); p == "" {
		t.Error("stat:processed not written")
	}
	limit := maxAttempts(base, maxDelay, elapsed)
	total, most := 0, 0
	for _, a := range counter.attempts {
		total += a
		most = max(most, a)
	}
	if len(counter.attempts) != n || most > limit {
		t.Fatalf("%d jobs attempted the lease; the busiest made %d attempts, the backoff allows %d in %v", len(counter.attempts), most, limit, elapsed)
	}
	// Each attempt costs a handful of commands (fetch, lease, reschedule, promotion), the
	// rest is the server's own polling (schedule every 20 ms, heartbeat, idle fetch).
	if budget := 10*int64(total) + int64(200*elapsed.Seconds()); counter.commands.Load() > budget {
		t.Errorf("%d Redis commands for %d lease attempts in %v; budget %d", counter.commands.Load(), total, elapsed, budget)
	}
	t.Logf("%d jobs in %v: %d lease attempts (at most %d per job, bound %d), %d Redis commands (%.0f/s)",
		n, elapsed.Round(time.Millisecond), total, most, limit, counter.commands.Load(), float64(counter.commands.Load())/elapsed.Seconds())
}
