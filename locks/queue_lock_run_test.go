package locks_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

// started is what a handler saw when its job started.
type started struct {
	jid      string
	lockHeld int64 // EXISTS of the lock key at start
	repushed string
	err      error
}

func TestQueueLockReleasedAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	args := []any{map[string]any{"user_id": 7}}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Run("server releases the lock before the handler; a new push then succeeds", func(t *testing.T) {
			const ns = "r1"
			c := newClient(rdb, ns)
			key := ns + ":" + lockKey(t, "Report", `{"user_id":7}`)
			first, err := c.Push(ctx, "Report", args)
			if err != nil {
				t.Fatal(err)
			}
			seen := make(chan started, 2)
			release := make(chan struct{})
			runServer(t, rdb, ns, locks.QueueLock(rdb, locks.RedisNamespace(ns)), "Report", func(ctx context.Context, job *sidekiq.Job) error {
				s := started{jid: job.JID, lockHeld: rdb.Exists(ctx, key).Val()}
				if job.JID == first {
					s.repushed, s.err = c.Push(ctx, "Report", args, sidekiq.Queue("later"))
				}
				seen <- s
				<-release
				return nil
			})
			s := receive(t, seen, "the job to start")
			close(release)
			if s.jid != first || s.lockHeld != 0 {
				t.Fatalf("job %s started with lock present = %d; want job %s and no lock", s.jid, s.lockHeld, first)
			}
			if s.err != nil || s.repushed == "" || s.repushed == first {
				t.Fatalf("identical push after start: jid %q err %v; want a new job", s.repushed, s.err)
			}
			if v := rdb.Get(ctx, key).Val(); v != s.repushed {
				t.Fatalf("lock holds %q, want the new job %q", v, s.repushed)
			}
		})
		t.Run("scheduled job promoted and run releases its own lock", func(t *testing.T) {
			const ns = "r5"
			c := newClient(rdb, ns)
			key := ns + ":" + lockKey(t, "Report", `{"user_id":7}`)
			jid, err := c.Push(ctx, "Report", args, sidekiq.In(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if s := firstStart(t, rdb, ns, key); s.jid != jid || s.lockHeld != 0 {
				t.Fatalf("ran %s with lock present = %d; want %s with the lock released", s.jid, s.lockHeld, jid)
			}
		})
		t.Run("expired lock: job still runs", func(t *testing.T) {
			const ns = "r2"
			c := newClient(rdb, ns)
			key := ns + ":" + lockKey(t, "Report", `{"user_id":7}`)
			jid, err := c.Push(ctx, "Report", args)
			if err != nil {
				t.Fatal(err)
			}
			rdb.Del(ctx, key)
			if s := firstStart(t, rdb, ns, key); s.jid != jid {
				t.Fatalf("ran %s, want %s", s.jid, jid)
			}
		})
		t.Run("lock taken over by another job is not released", func(t *testing.T) {
			const ns = "r3"
			c := newClient(rdb, ns)
			key := ns + ":" + lockKey(t, "Report", `{"user_id":7}`)
			if _, err := c.Push(ctx, "Report", args); err != nil {
				t.Fatal(err)
			}
			rdb.Set(ctx, key, "someoneelse", 0)
			if s := firstStart(t, rdb, ns, key); s.lockHeld != 1 || rdb.Get(ctx, key).Val() != "someoneelse" {
				t.Fatalf("another job's lock was touched: present %d, value %q", s.lockHeld, rdb.Get(ctx, key).Val())
			}
		})
		t.Run("job pushed without the payload key: server computes the key", func(t *testing.T) {
			const ns = "r4"
			key := ns + ":" + lockKey(t, "Report", `{"user_id":7}`)
			jid, err := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: ns}).Push(ctx, "Report", args)
			if err != nil {
				t.Fatal(err)
			}
			rdb.Set(ctx, key, jid, 0) // as a producer that took the lock another way would
			if s := firstStart(t, rdb, ns, key); s.lockHeld != 0 {
				t.Fatal("lock still present when the job started")
			}
		})
	})
}

// firstStart runs a server with the queue lock under ns and reports the first job it starts,
// with whether key existed at that moment.
func firstStart(t *testing.T, rdb redis.UniversalClient, ns, key string) started {
	t.Helper()
	seen := make(chan started, 1)
	runServer(t, rdb, ns, locks.QueueLock(rdb, locks.RedisNamespace(ns)), "Report", func(ctx context.Context, job *sidekiq.Job) error {
		select {
		case seen <- started{jid: job.JID, lockHeld: rdb.Exists(ctx, key).Val()}:
		default:
		}
		return nil
	})
	return receive(t, seen, "a job to start")
}

func TestQueueLockReleaseErrorFailsJob(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	job, err := sidekiq.ParseJobString(`{"class":"Report","jid":"abc","queue":"default","args":[{"user_id":7}]}`)
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	err = sidekiq.Perform(context.Background(), sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		ran = true
		return nil
	}), job, locks.QueueLock(rdb))
	if err == nil || ran {
		t.Fatalf("release against an unreachable Redis: err %v, handler ran %v; want an error and no run", err, ran)
	}
}
