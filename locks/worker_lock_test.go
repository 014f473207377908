package locks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/faultproxy"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// parseJob parses a payload or fails the test.
func parseJob(t *testing.T, payload string) *sidekiq.Job {
	t.Helper()
	job, err := sidekiq.ParseJobString(payload)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// run passes job through lock (and the start hooks, as a Server does) into h.
func run(ctx context.Context, lock sidekiq.RunMiddleware, job *sidekiq.Job, h func(context.Context) error) error {
	return sidekiq.Perform(ctx, sidekiq.HandlerFunc(func(ctx context.Context, _ *sidekiq.Job) error { return h(ctx) }), job, lock)
}

func workerKey(t *testing.T, ns, in string) string {
	t.Helper()
	return locks.WorkerKeyPrefix + lockKey(t, ns, in)[len(locks.QueueKeyPrefix):]
}

func TestWorkerLockDelay(t *testing.T) {
	t.Parallel()
	w := locks.WorkerLock(nil, locks.Backoff(100*time.Millisecond, time.Second))
	cases := []struct {
		n        int
		min, max time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{60, 500 * time.Millisecond, time.Second},
		{1 << 30, 500 * time.Millisecond, time.Second},
	}
	for _, tc := range cases {
		for range 200 {
			if d := w.Delay(tc.n); d < tc.min || d > tc.max {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tc.n, d, tc.min, tc.max)
			}
		}
	}
	if d := locks.WorkerLock(nil).Delay(1); d < locks.DefaultBackoffBase/2 || d > locks.DefaultBackoffBase {
		t.Fatalf("default Delay(1) = %v, want in [%v, %v]", d, locks.DefaultBackoffBase/2, locks.DefaultBackoffBase)
	}
}

func TestWorkerLockRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const payload = `{"class":"Sync","jid":"j1","queue":"default","args":[{"account":3,"n":1}]}`
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Run("holds the lease while the handler runs, then releases it", func(t *testing.T) {
			key := "w1:" + workerKey(t, "Sync", `{"account":3}`)
			lock := locks.WorkerLock(rdb, locks.Inputs("account"), locks.RedisNamespace("w1"))
			var during string
			err := run(ctx, lock, parseJob(t, payload), func(ctx context.Context) error {
				during = rdb.Get(ctx, key).Val()
				return nil
			})
			if err != nil || during != "j1" {
				t.Fatalf("err %v, lock during the run %q; want nil and j1", err, during)
			}
			if n := rdb.Exists(ctx, key).Val(); n != 0 {
				t.Fatal("lock still present after the run")
			}
		})
		t.Run("handler error is returned and the lock released", func(t *testing.T) {
			key := "w2:" + workerKey(t, "Sync", `{"account":3}`)
			lock := locks.WorkerLock(rdb, locks.Inputs("account"), locks.RedisNamespace("w2"))
			boom := errors.New("boom")
			if err := run(ctx, lock, parseJob(t, payload), func(context.Context) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("err %v, want boom", err)
			}
			if rdb.Exists(ctx, key).Val() != 0 {
				t.Fatal("lock still present after a failed run")
			}
		})
		t.Run("contention reschedules with backoff and counts waits in the payload", func(t *testing.T) {
			key := "w3:" + workerKey(t, "Sync", `{"account":3}`)
			rdb.Set(ctx, key, "other", time.Minute)
			lock := locks.WorkerLock(rdb, locks.Inputs("account"), locks.RedisNamespace("w3"), locks.Backoff(time.Second, 3*time.Second))
			job := parseJob(t, payload)
			for i, want := range []struct{ min, max time.Duration }{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}, {1500 * time.Millisecond, 3 * time.Second}} {
				ran := false
				err := run(ctx, lock, job, func(context.Context) error { ran = true; return nil })
				var rin *sidekiq.RetryInError
				var held *locks.WorkerLockHeldError
				if ran || !errors.As(err, &rin) || !errors.As(err, &held) || !errors.Is(err, locks.ErrWorkerLockHeld) {
					t.Fatalf("attempt %d: ran %v, err %v; want a RetryIn caused by a WorkerLockHeldError", i+1, ran, err)
				}
				if held.Holder != "other" || held.Key != key {
					t.Fatalf("WorkerLockHeldError %+v, want holder other on %s", held, key)
				}
				if rin.Delay < want.min || rin.Delay > want.max {
					t.Fatalf("attempt %d: delay %v, want in [%v, %v]", i+1, rin.Delay, want.min, want.max)
				}
				var waits int
				if ok, err := job.Get(locks.WaitsKey, &waits); !ok || err != nil || waits != i+1 {
					t.Fatalf("attempt %d: %s = %d (present %v, %v)", i+1, locks.WaitsKey, waits, ok, err)
				}
			}
			if job.RetryCount != nil {
				t.Fatal("contention set retry_count")
			}
			rdb.Del(ctx, key)
			if err := run(ctx, lock, job, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if ok, _ := job.Get(locks.WaitsKey, new(int)); ok {
				t.Fatalf("%s still in the payload after the job got the lock", locks.WaitsKey)
			}
		})
		t.Run("panicking handler frees the lock", func(t *testing.T) {
			key := "w7:" + workerKey(t, "Sync", `{"account":3}`)
			lock := locks.WorkerLock(rdb, locks.Inputs("account"), locks.RedisNamespace("w7"))
			err := run(ctx, lock, parseJob(t, payload), func(context.Context) error { panic("boom") })
			var pe *sidekiq.PanicError
			if !errors.As(err, &pe) {
				t.Errorf("a panicking handler returned %v, want a *sidekiq.PanicError for the Server to record", err)
			}
			if rdb.Exists(ctx, key).Val() != 0 {
				t.Fatal("lock left after a panicking handler")
			}
		})
		t.Run("release leaves a lock another job took", func(t *testing.T) {
			key := "w4:" + workerKey(t, "Sync", `{"account":3}`)
			lock := locks.WorkerLock(rdb, locks.Inputs("account"), locks.RedisNamespace("w4"))
			err := run(ctx, lock, parseJob(t, payload), func(ctx context.Context) error {
				return rdb.Set(ctx, key, "second", time.Minute).Err() // as if the lease ran out and j2 took it
			})
			if err != nil {
				t.Fatal(err)
			}
			if v := rdb.Get(ctx, key).Val(); v != "second" {
				t.Fatalf("lock holds %q after the first holder finished, want second", v)
			}
		})
		t.Run("same jid already holding is contention, not reentry", func(t *testing.T) {
			key := "w5:" + workerKey(t, "Sync", `{"account":3}`)
			rdb.Set(ctx, key, "j1", time.Minute)
			lock := locks.WorkerLock(rdb, locks.Inputs("account"), locks.RedisNamespace("w5"))
			err := run(ctx, lock, parseJob(t, payload), func(context.Context) error { return nil })
			if !errors.Is(err, locks.ErrWorkerLockHeld) {
				t.Fatalf("err %v, want ErrWorkerLockHeld", err)
			}
		})
		t.Run("shared namespace: two classes, one lock", func(t *testing.T) {
			key := "w6:" + workerKey(t, "accounts", `{"account":3}`)
			lock := locks.WorkerLock(rdb, locks.Namespace("accounts"), locks.Inputs("account"), locks.RedisNamespace("w6"))
			other := parseJob(t, `{"class":"Bill","jid":"j2","queue":"default","args":[{"account":3,"x":true}]}`)
			err := run(ctx, lock, parseJob(t, payload), func(ctx context.Context) error {
				if v := rdb.Get(ctx, key).Val(); v != "j1" {
					t.Errorf("shared key holds %q, want j1", v)
				}
				return run(ctx, lock, other, func(context.Context) error { return nil })
			})
			if !errors.Is(err, locks.ErrWorkerLockHeld) {
				t.Fatalf("the other class's job got %v, want ErrWorkerLockHeld", err)
			}
		})
		t.Run("unkeyable jobs are discarded; other classes pass", func(t *testing.T) {
			lock := locks.WorkerLock(rdb, locks.Classes("Sync"))
			positional := parseJob(t, `{"class":"Sync","jid":"j3","queue":"default","args":[1,2]}`)
			err := run(ctx, lock, positional, func(context.Context) error { return nil })
			if !errors.Is(err, sidekiq.ErrDiscard) || !errors.Is(err, locks.ErrNoInputs) {
				t.Fatalf("positional job: err %v, want a discard matching ErrNoInputs", err)
			}
			ran := false
			other := parseJob(t, `{"class":"Other","jid":"j4","queue":"default","args":[1,2]}`)
			if err := run(ctx, lock, other, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
				t.Fatalf("job of another class: err %v, ran %v", err, ran)
			}
		})
	})
}

func TestWorkerLockUnreachableRedisFailsJob(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	ran := false
	err := run(context.Background(), locks.WorkerLock(rdb), parseJob(t, `{"class":"Sync","jid":"j1","queue":"default","args":[{"a":1}]}`),
		func(context.Context) error { ran = true; return nil })
	if err == nil || ran || errors.Is(err, sidekiq.ErrRetryIn) || errors.Is(err, sidekiq.ErrDiscard) {
		t.Fatalf("err %v, ran %v; want a plain failure (retried) and no run", err, ran)
	}
}

// TestWorkerLockLease (semantics §9.2): a holder that outlives its lease keeps the lock by
// renewal, and a holder whose lease is lost has its context cancelled with ErrLeaseLost and
// does not free the new holder's lock.
func TestWorkerLockLease(t *testing.T) {
	t.Parallel()
	rdb := testsuite.RealRedis(t).Client
	ctx := context.Background()
	const lease = 150 * time.Millisecond
	lock := locks.WorkerLock(rdb, locks.Inputs("account"), locks.Lease(lease))
	key := workerKey(t, "Sync", `{"account":3}`)
	first := parseJob(t, `{"class":"Sync","jid":"j1","queue":"default","args":[{"account":3}]}`)

	t.Run("renewal keeps the lock for 4 leases", func(t *testing.T) {
		end := time.Now().Add(4 * lease)
		attempts := 0
		err := run(ctx, lock, first, func(ctx context.Context) error {
			for time.Now().Before(end) {
				second := parseJob(t, `{"class":"Sync","jid":"j2","queue":"default","args":[{"account":3}]}`)
				err := run(ctx, lock, second, func(context.Context) error { return errors.New("second holder got in") })
				if !errors.Is(err, locks.ErrWorkerLockHeld) {
					return err
				}
				if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > lease {
					return errors.New("lease TTL out of range: " + ttl.String())
				}
				attempts++
				time.Sleep(lease / 10) // pacing the contender; nothing is asserted on time
			}
			return ctx.Err()
		})
		if err != nil {
			t.Fatalf("after %d contended attempts: %v", attempts, err)
		}
		if attempts < 10 {
			t.Fatalf("only %d contended attempts", attempts)
		}
		if rdb.Exists(ctx, key).Val() != 0 {
			t.Fatal("lock left after the run")
		}
	})
	t.Run("lost lease cancels the handler and spares the new holder", func(t *testing.T) {
		var cause error
		err := run(ctx, lock, first, func(ctx context.Context) error {
			// The lease ran out (say, the process stalled) and another job took the lock.
			if err := rdb.Set(ctx, key, "j2", time.Minute).Err(); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				cause = context.Cause(ctx)
				return ctx.Err()
			case <-time.After(20 * lease):
				return errors.New("handler context not cancelled after its lease was lost")
			}
		})
		if !errors.Is(cause, locks.ErrLeaseLost) || !errors.Is(err, locks.ErrLeaseLost) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cause %v, err %v; want ErrLeaseLost for both", cause, err)
		}
		if v := rdb.Get(ctx, key).Val(); v != "j2" {
			t.Fatalf("lock holds %q after the first holder finished, want j2", v)
		}
	})
}

// TestWorkerLockStalledRenewal (semantics §9.2, without renewal): the holder's renewals
// cannot reach Redis (a proxy delays them past their timeout), so its lease really expires
// in Redis and a second job takes the lock. The first holder's context is cancelled with
// ErrLeaseLost once its lease has run out unconfirmed, and its release, when Redis is
// reachable again, leaves the second holder's lock alone.
func TestWorkerLockStalledRenewal(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	proxy, err := faultproxy.Start(db.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	opts, err := redis.ParseURL(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.Addr = proxy.Addr()
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	slow := redis.NewClient(opts)
	t.Cleanup(func() { _ = slow.Close() })

	const lease = 300 * time.Millisecond
	lock := locks.WorkerLock(slow, locks.Inputs("account"), locks.Lease(lease))
	key := workerKey(t, "Sync", `{"account":3}`)
	var cause error
	err = run(ctx, lock, parseJob(t, `{"class":"Sync","jid":"j1","queue":"default","args":[{"account":3}]}`), func(ctx context.Context) error {
		proxy.SetLatency(10 * lease)     // renewals now time out
		bg := context.WithoutCancel(ctx) // ctx may be cancelled any time from here on
		testutil.Eventually(t, 10*time.Second, "the lease to expire in Redis", func() bool {
			return db.Client.Exists(bg, key).Val() == 0
		})
		if err := db.Client.Set(bg, key, "j2", time.Minute).Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			cause = context.Cause(ctx)
		case <-time.After(30 * time.Second):
			return errors.New("handler context not cancelled after its lease ran out")
		}
		proxy.SetLatency(0)
		proxy.CutAll() // drop connections still holding delayed traffic
		return ctx.Err()
	})
	if !errors.Is(cause, locks.ErrLeaseLost) || !errors.Is(err, locks.ErrLeaseLost) {
		t.Fatalf("cause %v, err %v; want ErrLeaseLost", cause, err)
	}
	if v := db.Client.Get(ctx, key).Val(); v != "j2" {
		t.Fatalf("lock holds %q after the stalled holder finished, want j2", v)
	}
}
