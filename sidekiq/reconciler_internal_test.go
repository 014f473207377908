package sidekiq

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestReconcilerReturnsStrandedJobs: an entry in this process's in-flight hash that the
// process does not hold (a fetch whose reply was lost without an error) is pushed back and
// run, once; a job the process holds and is running is left alone however many checks
// pass.
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

	// A held job: running, so in the in-flight hash and held.
	if _, err := NewClient(rdb, nil).Push(ctx, "Slow", nil, JID("held0000000000000000000a")); err != nil {
		t.Fatal(err)
	}
	<-started
	// A stranded job: in the hash under a seq no fetch of this process will use soon.
	stranded := `{"class":"Quick","args":[],"jid":"strand00000000000000000b","queue":"default","retry":true,"created_at":1700000000.0,"enqueued_at":1700000000.0}`
	if err := rdb.HSet(ctx, srv.store.inflight, fieldFor(1<<40, "default"), stranded).Err(); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(10 * time.Second)
	select {
	case <-quickRan: // the only Quick job is the stranded one
	case <-time.After(time.Until(deadline)):
		t.Fatal("the stranded job was not pushed back and run")
	}
	// More checks while the held job still runs: it must stay where it is, unrun again.
	for want := srv.reconciler.checks.Load() + 5; srv.reconciler.checks.Load() < want; {
		if time.Now().After(deadline) {
			t.Fatal("the reconciler stopped checking")
		}
		time.Sleep(time.Millisecond)
	}
	fields, err := rdb.HKeys(ctx, srv.store.inflight).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) != 1 {
		t.Fatalf("in-flight hash holds %d entries, want the running job only: %q", len(fields), fields)
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

// TestFetchRegistersInflightHash: a recoverer that took this process for dead (its
// heartbeat came late) drops its in-flight hash from the index; the next fetch that puts
// a job in the hash registers it again at once, not at the next heartbeat, so a crash in
// between cannot leave jobs where no recoverer looks.
func TestFetchRegistersInflightHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// Heartbeats far apart: only a fetch can put the hash back in the index in time.
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
	index := srv.keys.inflightIndex()
	for i := 0; i < 2; i++ {
		// What a recoverer does to a process it takes for dead.
		if err := rdb.HDel(ctx, index, srv.store.inflight).Err(); err != nil {
			t.Fatal(err)
		}
		jid, err := NewClient(rdb, nil).Push(ctx, "W", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := <-started; got != jid {
			t.Fatalf("started %s, want %s", got, jid)
		}
		if owner := rdb.HGet(ctx, index, srv.store.inflight).Val(); owner != srv.identity {
			t.Fatalf("job %d running, but the in-flight hash is not in the index (owner %q)", i, owner)
		}
	}
}

// TestAdoptTakesExactlyTheLostFetch: after a fetch whose reply was lost, the fetcher
// adopts exactly the entries that call wrote (its seqs), and the reconciler leaves them
// alone while the fetch is pending.
func TestAdoptTakesExactlyTheLostFetch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, rdb := embeddedServer(t, &Config{Queues: []string{"a", "b"}})
	srv.build()
	base := srv.reg.reserve(5)
	other := fieldFor(base+99, "a") // not this fetch's
	for _, f := range []string{fieldFor(base+1, "a"), fieldFor(base+2, "b"), other} {
		if err := rdb.HSet(ctx, srv.store.inflight, f, `{"class":"X","args":[]}`).Err(); err != nil {
			t.Fatal(err)
		}
	}
	fields, _ := rdb.HKeys(ctx, srv.store.inflight).Result()
	if strays := srv.reg.unheld(fields); len(strays) != 1 || strays[0] != other {
		t.Fatalf("unheld while pending = %q, want only %q", strays, other)
	}
	units := srv.fetcher.adopt(ctx, base, base+5, errors.New("lost"))
	if len(units) != 2 {
		t.Fatalf("adopted %d jobs, want 2", len(units))
	}
	for _, u := range units {
		if srv.Queues()[u.q] != map[uint64]string{base + 1: "a", base + 2: "b"}[u.seq] {
			t.Errorf("unit %d in queue %d", u.seq, u.q)
		}
	}
	// The lost fetch's request arrives only now (it was delayed on its connection): it
	// must take nothing, or its jobs would sit in the hash unheld.
	if err := rdb.LPush(ctx, "queue:a", `{"class":"X","args":[]}`).Err(); err != nil {
		t.Fatal(err)
	}
	late, err := srv.store.fetch(ctx, fetchRequest{order: []int{0, 1}, allow: []int{-1, -1}, want: 5, budget: 1 << 20, base: base})
	if err != nil || len(late) != 0 {
		t.Fatalf("a fetch below the fence took %d jobs (err %v)", len(late), err)
	}
	if n := rdb.LLen(ctx, "queue:a").Val(); n != 1 {
		t.Fatalf("queue:a holds %d jobs after the fenced fetch, want 1", n)
	}
	next, err := srv.store.fetch(ctx, fetchRequest{order: []int{0, 1}, allow: []int{-1, -1}, want: 5, budget: 1 << 20, base: srv.reg.reserve(5)})
	if err != nil || len(next) != 1 {
		t.Fatalf("the next fetch took %d jobs (err %v), want 1", len(next), err)
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
