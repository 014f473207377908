package sidekiq_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/sidekiq"
)

// clusterKeys returns every key of every master of the cluster.
func clusterKeys(t *testing.T, rdb *redis.ClusterClient) []string {
	t.Helper()
	var mu sync.Mutex
	var all []string
	err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
		keys, err := node.Keys(ctx, "*").Result()
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// A cluster client whose namespace is not a hash tag is refused up front, by every push
// and by Server.Start, with an error that says why, and nothing is written. Before
// checkCluster, Push failed with CROSSSLOT from deep inside a MULTI and Start with
// CROSSSLOT from its first heartbeat.
func TestClusterRefusesNamespaceWithoutHashTag(t *testing.T) {
	t.Parallel()
	cl := redisproc.StartCluster(t)
	rdb := cl.Client(t)
	ctx := context.Background()
	for _, ns := range []string{"", "ferry", "{}", "{ferry", "ferry}", "{}ferry{x}", "x{"} {
		client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: ns})
		_, err := client.Push(ctx, "Quick", []any{1})
		if !errors.Is(err, sidekiq.ErrClusterNamespace) || !strings.Contains(err.Error(), "hash tag") {
			t.Errorf("namespace %q: Push error %v, want ErrClusterNamespace", ns, err)
		}
		if _, err := client.PushBulk(ctx, "Quick", [][]any{{1}, {2}}); !errors.Is(err, sidekiq.ErrClusterNamespace) {
			t.Errorf("namespace %q: PushBulk error %v, want ErrClusterNamespace", ns, err)
		}
		res, _ := client.PushJobs(ctx, []sidekiq.JobPush{{Job: &sidekiq.Job{Class: "Quick", Args: []byte("[1]")}}})
		if !errors.Is(res[0].Err, sidekiq.ErrClusterNamespace) {
			t.Errorf("namespace %q: PushJobs error %v, want ErrClusterNamespace", ns, res[0].Err)
		}
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{Namespace: ns})
		if err := srv.Start(ctx); !errors.Is(err, sidekiq.ErrClusterNamespace) {
			t.Errorf("namespace %q: Start error %v, want ErrClusterNamespace", ns, err)
			if err == nil {
				_ = srv.Stop(ctx)
			}
		}
	}
	if keys := clusterKeys(t, rdb); len(keys) != 0 {
		t.Fatalf("refused clients wrote %v", keys)
	}
}

// clusterRuns collects what the cluster servers ran.
type clusterRuns struct {
	mu    sync.Mutex
	runs  map[string]int // jid → runs that returned nil
	flaky int
	ok    chan string // every successful run
	stuck chan string // the Stuck job started on the first server
}

// TestClusterEndToEnd runs Ferry on a real three-node Redis Cluster with the namespace
// "{ferry}": pushes of every kind (single, bulk, scheduled, guarded, PushJobs), runs,
// a retry, a death, a scheduled job promoted, and the recovery of a job held by a
// process that vanished. Every key Ferry wrote is in the namespace, so in one slot.
func TestClusterEndToEnd(t *testing.T) {
	t.Parallel()
	const ns = "{ferry}"
	cl := redisproc.StartCluster(t)
	rdb := cl.Client(t)
	ctx := context.Background()
	client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: ns})

	runs := &clusterRuns{runs: map[string]int{}, ok: make(chan string, 100), stuck: make(chan string, 1)}
	release := make(chan struct{})
	handlers := func(srv *sidekiq.Server, blockStuck bool) {
		done := func(jid string) {
			runs.mu.Lock()
			runs.runs[jid]++
			runs.mu.Unlock()
			runs.ok <- jid
		}
		srv.Handle("Quick", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
			done(job.JID)
			return nil
		}))
		srv.Handle("Flaky", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
			runs.mu.Lock()
			runs.flaky++
			first := runs.flaky == 1
			runs.mu.Unlock()
			if first {
				return errors.New("flaky: first attempt fails")
			}
			done(job.JID)
			return nil
		}))
		srv.Handle("Doomed", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
			return errors.New("doomed")
		}))
		srv.Handle("Stuck", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
			if blockStuck {
				runs.stuck <- job.JID
				<-release
				return nil
			}
			done(job.JID)
			return nil
		}))
	}
	cfg := func() *sidekiq.Config {
		return &sidekiq.Config{Namespace: ns, Concurrency: 2, Queues: []string{"default", "stuck"},
			FetchTimeout: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond,
			ProcessTTL: 2 * time.Second, RecoverInterval: 200 * time.Millisecond,
			RetryDelay: func(int, error, *sidekiq.Job) time.Duration { return time.Millisecond }}
	}

	// 1. A process takes the Stuck job, then loses Redis for good (its own client closed):
	// to the cluster it is a process that died holding a job.
	lostRDB := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	lost := sidekiq.NewServer(lostRDB, cfg())
	handlers(lost, true)
	if err := lost.Start(ctx); err != nil {
		t.Fatalf("Start on the cluster: %v", err)
	}
	stuckJID, err := client.Push(ctx, "Stuck", nil, sidekiq.Queue("stuck"))
	if err != nil {
		t.Fatalf("Push on the cluster: %v", err)
	}
	if got := receiveJID(t, runs.stuck, "the Stuck job to start"); got != stuckJID {
		t.Fatalf("stuck job %s started, want %s", got, stuckJID)
	}
	_ = lostRDB.Close()
	t.Cleanup(func() {
		close(release)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = lost.Stop(sctx) // its Redis is gone: errors expected
	})

	// 2. Pushes of every kind.
	want := map[string]bool{stuckJID: true}
	jid, err := client.Push(ctx, "Quick", []any{1})
	if err != nil {
		t.Fatal(err)
	}
	want[jid] = true
	bulk, err := client.PushBulk(ctx, "Quick", [][]any{{2}, {3}, {4}})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range bulk {
		want[j] = true
	}
	if jid, err = client.Push(ctx, "Quick", []any{5}, sidekiq.In(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	want[jid] = true
	guard := sidekiq.PushGuard{Key: "ferry:test:once", TTL: time.Minute}
	gctx := sidekiq.WithPushGuards(ctx, guard)
	if jid, err = client.Push(gctx, "Quick", []any{6}); err != nil {
		t.Fatal(err)
	}
	want[jid] = true
	var held *sidekiq.PushStoppedError
	if _, err := client.Push(gctx, "Quick", []any{6}); !errors.As(err, &held) || held.JID != jid {
		t.Fatalf("second guarded push: %v, want held by %s", err, jid)
	}
	res, err := client.PushJobs(ctx, []sidekiq.JobPush{
		{Job: &sidekiq.Job{Class: "Quick", Args: []byte("[7]")}, Guards: []sidekiq.PushGuard{{Key: "ferry:test:pj", TTL: time.Minute}}},
		{Job: &sidekiq.Job{Class: "Quick", Args: []byte("[8]")}, At: time.Now().Add(200 * time.Millisecond)},
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("PushJobs: %v %+v", err, res)
	}
	want[res[0].JID], want[res[1].JID] = true, true
	flakyJID, err := client.Push(ctx, "Flaky", nil)
	if err != nil {
		t.Fatal(err)
	}
	want[flakyJID] = true
	doomedJID, err := client.Push(ctx, "Doomed", nil, sidekiq.Retry(0))
	if err != nil {
		t.Fatal(err)
	}

	// 3. A live server works it all, and recovers the vanished process's job.
	srv := sidekiq.NewServer(rdb, cfg())
	handlers(srv, false)
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start on the cluster: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(sctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	for len(want) > 0 {
		got := receiveJID(t, runs.ok, "every job to run")
		if !want[got] {
			t.Fatalf("job %s ran, not expected (or ran twice)", got)
		}
		delete(want, got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rdb.ZCard(ctx, ns+":dead").Val() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the doomed job never reached the dead set")
		}
		time.Sleep(20 * time.Millisecond)
	}
	dead := rdb.ZRange(ctx, ns+":dead", 0, -1).Val()
	if len(dead) != 1 || !strings.Contains(dead[0], doomedJID) {
		t.Fatalf("dead set %v, want the doomed job", dead)
	}
	runs.mu.Lock()
	flaky := runs.flaky
	runs.mu.Unlock()
	if flaky != 2 {
		t.Errorf("Flaky ran %d times, want 2 (a failure, then its retry)", flaky)
	}
	for _, k := range []string{":queue:default", ":queue:stuck", ":retry", ":schedule"} {
		if n := rdb.Exists(ctx, ns+k).Val(); n != 0 {
			t.Errorf("%s%s still holds jobs", ns, k)
		}
	}
	for _, k := range clusterKeys(t, rdb) {
		if !strings.HasPrefix(k, ns+":") {
			t.Errorf("key %q outside the namespace (another slot)", k)
		}
	}
}

func receiveJID(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}
