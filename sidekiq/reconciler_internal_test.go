package sidekiq

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestReconcilerReturnsStrandedJobs: an entry in this process's in-progress list that the
// process does not hold (a fetch whose reply was lost) is pushed back and run, once; a job
// the process holds and is running is left alone however many checks pass.
func TestReconcilerReturnsStrandedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	srv, rdb := embeddedServer(t, &Config{Concurrency: 2, HeartbeatInterval: 20 * time.Millisecond, FetchTimeout: 50 * time.Millisecond})
	var mu sync.Mutex
	runs := map[string]int{}
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv.Handle("Slow", HandlerFunc(func(ctx context.Context, j *Job) error {
		mu.Lock()
		runs[j.JID]++
		mu.Unlock()
		started <- struct{}{}
		<-release
		return nil
	}))
	quickRan := make(chan struct{}, 4)
	srv.Handle("Quick", HandlerFunc(func(_ context.Context, j *Job) error {
		mu.Lock()
		runs[j.JID]++
		mu.Unlock()
		quickRan <- struct{}{}
		return nil
	}))
	startForTest(t, srv)

	// A held job: running, so in the in-progress list and held.
	if _, err := NewClient(rdb, nil).Push(ctx, "Slow", nil, JID("held0000000000000000000a")); err != nil {
		t.Fatal(err)
	}
	<-started
	// A stranded job: in the list, never dispatched.
	stranded := `{"class":"Quick","args":[],"jid":"strand00000000000000000b","queue":"default","retry":true,"created_at":1700000000.0,"enqueued_at":1700000000.0}`
	if err := rdb.LPush(ctx, srv.pkeys[0], stranded).Err(); err != nil {
		t.Fatal(err)
	}
	srv.reconcile.markSuspect()

	deadline := time.Now().Add(10 * time.Second)
	select {
	case <-quickRan: // the only Quick job is the stranded one
	case <-time.After(time.Until(deadline)):
		t.Fatal("the stranded job was not pushed back and run")
	}
	// Many more checks while the held job still runs: it must stay where it is, unrun again.
	for want := srv.reconcile.checks.Load() + 5; srv.reconcile.checks.Load() < want; {
		srv.reconcile.markSuspect()
		if time.Now().After(deadline) {
			t.Fatal("the reconciler stopped checking")
		}
		time.Sleep(time.Millisecond)
	}
	list, err := rdb.LRange(ctx, srv.pkeys[0], 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("in-progress list holds %d entries, want the running job only: %q", len(list), list)
	}
	if n := rdb.LLen(ctx, "queue:default").Val(); n != 0 {
		t.Fatalf("queue holds %d jobs: a held job was pushed back", n)
	}
	close(release)
	mu.Lock()
	defer mu.Unlock()
	if runs["held0000000000000000000a"] != 1 || runs["strand00000000000000000b"] != 1 {
		t.Fatalf("runs = %v, want each job once", runs)
	}
}

// TestFetchRegistersInProgressList: a recoverer that took this process for dead (its
// heartbeat came late) drops its in-progress lists from the index; the next fetch that
// puts a job in a list registers the list again at once, not at the next heartbeat, so a
// crash in between cannot leave jobs where no recoverer looks.
func TestFetchRegistersInProgressList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// Heartbeats far apart: only a fetch can put the list back in the index in time.
	srv, rdb := embeddedServer(t, &Config{Concurrency: 2, HeartbeatInterval: time.Hour, FetchTimeout: time.Second})
	started := make(chan string, 2)
	release := make(chan struct{})
	srv.Handle("W", HandlerFunc(func(_ context.Context, j *Job) error {
		started <- j.JID
		<-release
		return nil
	}))
	startForTest(t, srv)
	t.Cleanup(func() { close(release) }) // before the stop: cleanups run last-in first-out
	index := srv.keys.inprogressIndex()
	for i := 0; i < 2; i++ {
		// What a recoverer does to a process it takes for dead.
		if err := rdb.HDel(ctx, index, srv.pkeys[0]).Err(); err != nil {
			t.Fatal(err)
		}
		jid, err := NewClient(rdb, nil).Push(ctx, "W", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := <-started; got != jid {
			t.Fatalf("started %s, want %s", got, jid)
		}
		if owner := rdb.HGet(ctx, index, srv.pkeys[0]).Val(); owner != srv.owners[0] {
			t.Fatalf("job %d running, but its in-progress list is not in the index (owner %q)", i, owner)
		}
	}
}

// TestReconcilerChecksWithoutSuspicion: a stranded entry is found even when no error was
// seen (go-redis retried the fetch whose reply was lost, and the retry succeeded).
func TestReconcilerChecksWithoutSuspicion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, rdb := embeddedServer(t, &Config{Concurrency: 1, HeartbeatInterval: 10 * time.Millisecond, FetchTimeout: 50 * time.Millisecond})
	ran := make(chan string, 1)
	srv.Handle("Quick", HandlerFunc(func(_ context.Context, j *Job) error { ran <- j.JID; return nil }))
	startForTest(t, srv)
	stranded := `{"class":"Quick","args":[],"jid":"strand00000000000000000c","queue":"default","retry":true,"created_at":1700000000.0,"enqueued_at":1700000000.0}`
	if err := rdb.LPush(ctx, srv.pkeys[0], stranded).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case jid := <-ran:
		if jid != "strand00000000000000000c" {
			t.Fatalf("ran %s", jid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stranded job was not found without a failed fetch")
	}
}

// embeddedServer returns a Server with cfg on a fresh embedded Redis, and its client.
func embeddedServer(t *testing.T, cfg *Config) (*Server, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return NewServer(rdb, cfg), rdb
}

// startForTest starts srv and stops it (5 s grace) when the test ends.
func startForTest(t *testing.T, srv *Server) {
	t.Helper()
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
}
