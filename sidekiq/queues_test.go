package sidekiq_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// Behaviour of the queue modes with a real server on a real Redis. The pure ordering logic
// (parseQueues, queueOrder) is unit-tested in queues_internal_test.go.

// qtRecorder keeps the queues of the jobs a server ran, in the order they started.
type qtRecorder struct {
	mu     sync.Mutex
	queues []string
}

func (r *qtRecorder) add(q string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queues = append(r.queues, q)
	return len(r.queues)
}

func (r *qtRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queues)
}

func (r *qtRecorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queues...)
}

// qtPush pushes n "QJob" jobs onto queue q.
func qtPush(t *testing.T, c *sidekiq.Client, q string, n int) {
	t.Helper()
	args := make([][]any, n)
	for i := range args {
		args[i] = []any{q, i}
	}
	if _, err := c.PushBulk(context.Background(), "QJob", args, sidekiq.Queue(q)); err != nil {
		t.Fatalf("pushing to %s: %v", q, err)
	}
}

// qtStart starts srv and stops it (with a deadline) when the test ends.
func qtStart(t *testing.T, srv *sidekiq.Server) {
	t.Helper()
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { qtStop(t, srv) })
}

func qtStop(t *testing.T, srv *sidekiq.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// qtWait polls cond every few milliseconds until it holds, failing the test after d.
func qtWait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// inflightCount is how many jobs of queue (all, when queue is "") the process identity
// holds in its in-flight hash.
func inflightCount(t *testing.T, rdb redis.UniversalClient, identity, queue string) int64 {
	t.Helper()
	fields, err := rdb.HKeys(context.Background(), "ferry:inflight:"+identity).Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range fields {
		if _, q, ok := strings.Cut(f, ":"); ok && (queue == "" || q == queue) {
			n++
		}
	}
	return n
}

func qtLLen(t *testing.T, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// qtBlocks summarises a sequence of queue names as blocks: "high×200 low×200".
func qtBlocks(seq []string) string {
	var b strings.Builder
	for i := 0; i < len(seq); {
		j := i
		for j < len(seq) && seq[j] == seq[i] {
			j++
		}
		fmt.Fprintf(&b, "%s×%d ", seq[i], j-i)
		i = j
	}
	return strings.TrimSpace(b.String())
}

// TestStrictQueuesNeverServeLowerWhileHigherHasWork: in strict mode a lower queue is never
// served while a higher one has work.
//
//   - prefilled: both queues full before start (the lower one filled first, so its jobs
//     are older), one worker, default prefetch: the run order must be every "high" job,
//     then every "low" job.
//   - arriving: while "low" jobs run, one of them pushes three "high" jobs; with no
//     prefetch the very next three runs must be those "high" jobs, and "low" resumes after.
func TestStrictQueuesNeverServeLowerWhileHigherHasWork(t *testing.T) {
	t.Parallel()
	t.Run("prefilled", func(t *testing.T) {
		t.Parallel()
		db := testsuite.RealRedis(t)
		c := sidekiq.NewClient(db.Client, nil)
		const n = 300
		qtPush(t, c, "low", n)
		qtPush(t, c, "high", n)
		var rec qtRecorder
		srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 1, Queues: []string{"high", "low"}})
		srv.Handle("QJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
			rec.add(job.Queue)
			return nil
		}))
		qtStart(t, srv)
		qtWait(t, 20*time.Second, "every job to run", func() bool { return rec.len() >= 2*n })
		seq := rec.snapshot()
		if got, want := qtBlocks(seq), fmt.Sprintf("high×%d low×%d", n, n); got != want {
			t.Fatalf("run order %s, want %s", got, want)
		}
	})
	t.Run("arriving", func(t *testing.T) {
		t.Parallel()
		db := testsuite.RealRedis(t)
		c := sidekiq.NewClient(db.Client, nil)
		qtPush(t, c, "low", 20)
		var rec qtRecorder
		srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 1, Prefetch: -1, Queues: []string{"high", "low"}})
		srv.Handle("QJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
			if rec.add(job.Queue) == 5 {
				// Higher-priority work arrives while a low job runs.
				if _, err := c.PushBulk(ctx, "QJob", [][]any{{"h", 1}, {"h", 2}, {"h", 3}}, sidekiq.Queue("high")); err != nil {
					return sidekiq.Discard(err)
				}
			}
			return nil
		}))
		qtStart(t, srv)
		qtWait(t, 20*time.Second, "every job to run", func() bool { return rec.len() >= 23 })
		if got, want := qtBlocks(rec.snapshot()), "low×5 high×3 low×15"; got != want {
			t.Fatalf("run order %s, want %s", got, want)
		}
	})
}

// TestWeightedQueuesConvergeToWeightShares: with weights 6, 3 and 1 and every queue full
// for the whole measurement, the share of jobs taken from each queue converges to its
// weight's share (60 %, 30 %, 10 %) over 3,000 jobs; the standard deviation of a share is
// below 1 point, the tolerance is 4. When the heaviest queue is empty its share goes to the
// others in proportion to their weights (3:1 → 75 %, 25 %), measured one job per fetch
// (Concurrency 1, no prefetch) as Sidekiq fetches. (With prefetch, a batch gives the
// share of an empty queue to one queue drawn by weight, so the split is right on average
// but lumpy over a few batches; batches hold at most about 10 ms of work.)
func TestWeightedQueuesConvergeToWeightShares(t *testing.T) {
	t.Parallel()
	measure := func(t *testing.T, cfg sidekiq.Config, fill map[string]int, window int) map[string]float64 {
		db := testsuite.RealRedis(t)
		c := sidekiq.NewClient(db.Client, nil)
		for q, n := range fill {
			qtPush(t, c, q, n)
		}
		var rec qtRecorder
		cfg.Queues = []string{"w6,6", "w3,3", "w1,1"}
		srv := sidekiq.NewServer(db.Client, &cfg)
		srv.Handle("QJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
			rec.add(job.Queue)
			return nil
		}))
		qtStart(t, srv)
		qtWait(t, 30*time.Second, fmt.Sprintf("%d jobs to run", window), func() bool { return rec.len() >= window })
		qtStop(t, srv)
		seq := rec.snapshot()[:window]
		// Each queue must still have had work at the end of the window, or the shares
		// would measure queue sizes rather than weights.
		count := map[string]int{}
		for _, q := range seq {
			count[q]++
		}
		shares := map[string]float64{}
		for q, n := range fill {
			if count[q] >= n {
				t.Fatalf("queue %s ran dry during the measurement (%d of %d)", q, count[q], n)
			}
			shares[q] = float64(count[q]) / float64(window)
		}
		t.Logf("shares over %d jobs: %v", window, shares)
		return shares
	}
	check := func(t *testing.T, got map[string]float64, want map[string]float64) {
		t.Helper()
		for q, w := range want {
			if math.Abs(got[q]-w) > 0.04 {
				t.Errorf("queue %s: share %.3f, want %.2f ± 0.04", q, got[q], w)
			}
		}
	}
	t.Run("all full", func(t *testing.T) {
		t.Parallel()
		got := measure(t, sidekiq.Config{Concurrency: 10}, map[string]int{"w6": 3000, "w3": 2000, "w1": 1000}, 3000)
		check(t, got, map[string]float64{"w6": 0.6, "w3": 0.3, "w1": 0.1})
	})
	t.Run("heaviest empty", func(t *testing.T) {
		t.Parallel()
		got := measure(t, sidekiq.Config{Concurrency: 1, Prefetch: -1}, map[string]int{"w3": 2500, "w1": 1500}, 2000)
		check(t, got, map[string]float64{"w3": 0.75, "w1": 0.25})
	})
}

// TestRankedQueuesFollowTResqueOrder: in ranked mode queues are served strictly by weight,
// highest first, whatever order they were declared in: the weight-100 queues ("default",
// unweighted, counts 100; "mail,100") before "bus_incoming,1" before "refresh,-5000". The
// two weight-100 queues come in a random order fixed for the process, so each is served as
// one block.
func TestRankedQueuesFollowTResqueOrder(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	c := sidekiq.NewClient(db.Client, nil)
	const n = 40
	for _, q := range []string{"default", "bus_incoming", "refresh", "mail"} {
		qtPush(t, c, q, n)
	}
	var rec qtRecorder
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency: 1,
		QueueMode:   sidekiq.QueueModeRanked,
		Queues:      []string{"refresh,-5000", "bus_incoming,1", "default", "mail,100"},
	})
	srv.Handle("QJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		rec.add(job.Queue)
		return nil
	}))
	qtStart(t, srv)
	qtWait(t, 20*time.Second, "every job to run", func() bool { return rec.len() >= 4*n })
	got := qtBlocks(rec.snapshot())
	a := fmt.Sprintf("default×%d mail×%d bus_incoming×%d refresh×%d", n, n, n, n)
	b := fmt.Sprintf("mail×%d default×%d bus_incoming×%d refresh×%d", n, n, n, n)
	if got != a && got != b {
		t.Fatalf("run order %s, want %s (or the two weight-100 queues swapped)", got, a)
	}
}

// TestQueueLimitsCapConcurrentJobsOfAQueue: with Concurrency 4 and QueueLimits{"slow": 2},
// slow jobs on the highest-priority queue never hold more than 2 slots, even with 10 of
// them waiting, so the other slots keep serving "fast": 20 fast jobs all finish while both
// running slow jobs are still blocked. The server also holds no more than 2 slow jobs (none
// prefetched beyond the cap), leaving the rest in the queue for other processes. When
// released, every slow job runs, never more than 2 at once.
func TestQueueLimitsCapConcurrentJobsOfAQueue(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	c := sidekiq.NewClient(db.Client, nil)
	qtPush(t, c, "slow", 10)
	release := make(chan struct{})
	var slowRunning, slowMax, slowDone, fastDone atomic.Int64
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency: 4,
		Queues:      []string{"slow", "fast"},
		QueueLimits: map[string]int{"slow": 2},
	})
	srv.Handle("QJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		if job.Queue == "fast" {
			fastDone.Add(1)
			return nil
		}
		n := slowRunning.Add(1)
		defer slowRunning.Add(-1)
		for {
			m := slowMax.Load()
			if n <= m || slowMax.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		slowDone.Add(1)
		return nil
	}))
	qtStart(t, srv)
	qtWait(t, 10*time.Second, "two slow jobs to run", func() bool { return slowRunning.Load() == 2 })
	// The two running slow jobs are all this server holds from "slow".
	if n := inflightCount(t, db.Client, srv.Identity(), "slow"); n != 2 {
		t.Errorf("server holds %d slow jobs, want 2 (the cap)", n)
	}
	if n := qtLLen(t, db.Client, "queue:slow"); n != 8 {
		t.Errorf("queue:slow has %d jobs, want 8 left for other processes", n)
	}
	qtPush(t, c, "fast", 20)
	qtWait(t, 10*time.Second, "the fast jobs to run beside the blocked slow ones", func() bool { return fastDone.Load() == 20 })
	if n := slowDone.Load(); n != 0 {
		t.Fatalf("%d slow jobs finished before release; the test did not hold them", n)
	}
	if n := slowRunning.Load(); n != 2 {
		t.Errorf("%d slow jobs running, want 2", n)
	}
	close(release)
	qtWait(t, 10*time.Second, "every slow job to run", func() bool { return slowDone.Load() == 10 })
	if m := slowMax.Load(); m != 2 {
		t.Errorf("at most %d slow jobs ran at once, want exactly the cap 2", m)
	}
}

// TestQueueConfigErrorsAtStart: a weight ≤ 0 in weighted mode (the default once any queue
// has a weight) is reported by Start with a clear message pointing at ranked mode; the
// same queues start fine in ranked mode.
func TestQueueConfigErrorsAtStart(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	queues := []string{"default,100", "refresh,-5000"}
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: queues})
	err := srv.Start(context.Background())
	if err == nil {
		qtStop(t, srv)
		t.Fatal("Start accepted weight -5000 in weighted mode")
	}
	for _, want := range []string{`"refresh"`, "-5000", "weights > 0", "QueueModeRanked"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := srv.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "weights > 0") {
		t.Errorf("Run: %v, want the same configuration error", err)
	}
	ranked := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: queues, QueueMode: sidekiq.QueueModeRanked})
	if err := ranked.Start(context.Background()); err != nil {
		t.Fatalf("ranked mode refused %v: %v", queues, err)
	}
	qtStop(t, ranked)
}
