package locks_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestQueueLockPushRefusedLeavesNoLock (semantics §9.4): when Redis refuses the push inside
// the push-and-lock script (the queue key has the wrong type), no lock is left behind.
func TestQueueLockPushRefusedLeavesNoLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		c := newClient(rdb, "f1")
		rdb.Set(ctx, "f1:queue:default", "not a list", 0)
		if _, err := c.Push(ctx, "Report", []any{map[string]any{"user_id": 7}}); err == nil {
			t.Fatal("push onto a non-list queue key succeeded")
		}
		if n := rdb.Exists(ctx, "f1:"+lockKey(t, "Report", `{"user_id":7}`)).Val(); n != 0 {
			t.Fatal("a refused push left its lock")
		}
	})
}

// TestQueueLockBeforeHandlerStarts: the lock is released when the handler starts, so what
// happens to it when the chain ends earlier depends on how: a reschedule (RetryIn) keeps it
// for the job, any other end releases it.
func TestQueueLockBeforeHandlerStarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const payload = `{"class":"Report","jid":"j1","queue":"default","args":[{"user_id":7}],"ferry_queue_lock":"%s"}`
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		cases := []struct {
			name     string
			before   string // value of the lock before the run, "" for none
			inner    error  // what the middleware after the lock returns instead of calling next
			wantVal  string // value of the lock after the run, "" for none
			wantLong bool   // TTL beyond the delay (delay + TTL)
		}{
			{name: "reschedule keeps the job's lock", before: "j1", inner: sidekiq.RetryIn(time.Hour, nil), wantVal: "j1", wantLong: true},
			{name: "reschedule re-takes an expired lock", before: "", inner: sidekiq.RetryIn(time.Hour, nil), wantVal: "j1", wantLong: true},
			{name: "reschedule leaves another job's lock", before: "j2", inner: sidekiq.RetryIn(time.Hour, nil), wantVal: "j2"},
			{name: "failure before the handler releases", before: "j1", inner: errors.New("bad input"), wantVal: ""},
			{name: "discard before the handler releases", before: "j1", inner: sidekiq.Discard(errors.New("bad")), wantVal: ""},
			{name: "completed without the handler releases", before: "j1", inner: nil, wantVal: ""},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ns := "b" + string(rune('a'+i))
				key := lockKey(t, "Report", `{"user_id":7}`)
				if tc.before != "" {
					rdb.Set(ctx, ns+":"+key, tc.before, time.Minute)
				}
				q := locks.QueueLock(rdb, locks.RedisNamespace(ns), locks.TTL(time.Minute))
				job := parseJob(t, fmt.Sprintf(payload, key))
				err := q.InterceptRun(ctx, job, func(ctx context.Context) error {
					if tc.inner == nil {
						return nil // e.g. a "still needed?" check said no
					}
					return tc.inner
				})
				if !errors.Is(err, tc.inner) {
					t.Fatalf("err %v, want %v", err, tc.inner)
				}
				if v := rdb.Get(ctx, ns+":"+key).Val(); v != tc.wantVal {
					t.Fatalf("lock holds %q, want %q", v, tc.wantVal)
				}
				if ttl := rdb.PTTL(ctx, ns+":"+key).Val(); tc.wantLong && ttl <= time.Hour {
					t.Fatalf("lock TTL %v, want more than the 1h delay", ttl)
				}
			})
		}
	})
}

// TestQueueLockDuringRetries (semantics §9.5, §9.8): the queue lock is released when the
// handler first starts, so a failed job waits in the retry set without it: an identical push
// is accepted then. The retry is promoted and runs regardless (a promotion never checks the
// lock), and its start leaves the new job's lock alone (compare-and-delete). The new job is
// pushed to a queue the server does not work, so its lock stays in place.
func TestQueueLockDuringRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	args := []any{map[string]any{"user_id": 7}}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		const ns = "rt"
		c := newClient(rdb, ns)
		key := ns + ":" + lockKey(t, "Report", `{"user_id":7}`)
		first, err := c.Push(ctx, "Report", args)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		runs := map[string]int{}
		retryAllowed := make(chan struct{})
		retryArrived := make(chan struct{}, 1)
		ran := make(chan string, 10)
		cfg := sidekiq.Config{Concurrency: 2, Namespace: ns, RetryDelay: func(int, error, *sidekiq.Job) time.Duration { return 10 * time.Millisecond }}
		startServer(t, rdb, cfg, []sidekiq.Middleware{
			sidekiq.RunFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
				if job.JID == first && job.RetryCount != nil {
					retryArrived <- struct{}{}
					<-retryAllowed // hold the retry back until the identical push is made
				}
				return next(ctx)
			}),
			locks.QueueLock(rdb, locks.RedisNamespace(ns)),
		}, "Report", func(ctx context.Context, job *sidekiq.Job) error {
			mu.Lock()
			runs[job.JID]++
			n := runs[job.JID]
			mu.Unlock()
			ran <- job.JID
			if job.JID == first && n == 1 {
				return errors.New("first attempt fails")
			}
			return nil
		})
		receive(t, ran, "the first attempt")
		var allow sync.Once
		t.Cleanup(func() { allow.Do(func() { close(retryAllowed) }) })
		receive(t, retryArrived, "the retry to be promoted and fetched")
		if n := rdb.Exists(ctx, key).Val(); n != 0 {
			t.Fatal("the queue lock is held while the failed job waits to be retried")
		}
		second, err := c.Push(ctx, "Report", args, sidekiq.Queue("later")) // a queue nobody works
		if err != nil || second == first {
			t.Fatalf("identical push while the first job waits to retry: jid %q err %v; want a new job", second, err)
		}
		if v := rdb.Get(ctx, key).Val(); v != second {
			t.Fatalf("lock holds %q, want the new job %s", v, second)
		}
		allow.Do(func() { close(retryAllowed) })
		if got := receive(t, ran, "the retry to run"); got != first {
			t.Fatalf("ran %s, want the retry of %s", got, first)
		}
		testutil.Eventually(t, 10*time.Second, "the retry to finish", func() bool {
			return rdb.LLen(ctx, ns+":queue:default").Val() == 0 && rdb.ZCard(ctx, ns+":retry").Val() == 0
		})
		mu.Lock()
		defer mu.Unlock()
		if runs[first] != 2 {
			t.Fatalf("runs %v; want the first job twice (failure, then its retry)", runs)
		}
		if v := rdb.Get(ctx, key).Val(); v != second {
			t.Fatalf("lock holds %q after the retry started, want the new job %s still holding it", v, second)
		}
	})
}
