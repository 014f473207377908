package sidekiq

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// The fetcher keeps the workers fed. While queues have work it moves jobs in batches: one
// Lua call (fetchLua) moves as many jobs as there are free slots, up to a budget of bytes,
// into this process's in-flight hash. When the queues are empty it waits in Redis, one
// BLMOVE of each queue onto itself (which takes nothing), so a job pushed to an idle server
// starts within milliseconds; then it fetches again. Only the fetcher takes jobs, one call
// at a time, so every job in the hash that is not held comes from the one fetch in flight.
//
// A fetch whose reply is lost (a cut connection, a timeout) may have moved jobs. The fetch
// is never re-sent; instead the fetcher asks for exactly the entries that call wrote
// (adoptLua, by their seqs) and runs them, retrying until Redis answers.
type fetcher struct {
	store    *store
	reg      *register
	exec     *executor
	specs    []queueSpec
	order    *queueOrder
	log      *zap.Logger
	obs      observers
	quiet    <-chan struct{}
	stopping atomic.Bool // set by stop: fetched jobs are no longer dispatched

	concurrency   int
	prefetch      int   // Config.Prefetch
	prefetchBytes int64 // Config.PrefetchBytes
	fetchTimeout  time.Duration
	avgJobNanos   atomic.Int64 // moving average of job run time, for prefetch

	wake    chan struct{}
	waitMu  sync.Mutex
	waiting []bool
	wg      sync.WaitGroup // the loop and the blocking waits
}

// fetcherParams are a fetcher's dependencies.
type fetcherParams struct {
	store         *store
	reg           *register
	exec          *executor
	specs         []queueSpec
	mode          QueueMode
	log           *zap.Logger
	observers     observers
	quiet         <-chan struct{}
	concurrency   int
	prefetch      int
	prefetchBytes int64
	fetchTimeout  time.Duration
}

func newFetcher(p fetcherParams) *fetcher {
	return &fetcher{
		store: p.store, reg: p.reg, exec: p.exec, specs: p.specs, log: p.log, obs: p.observers, quiet: p.quiet,
		order:       newQueueOrder(p.specs, p.mode, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))),
		concurrency: p.concurrency, prefetch: p.prefetch, prefetchBytes: p.prefetchBytes, fetchTimeout: p.fetchTimeout,
		wake: make(chan struct{}, 1), waiting: make([]bool, len(p.specs)),
	}
}

// start runs the fetch loop until the server quiets.
func (f *fetcher) start(ctx context.Context) {
	f.wg.Add(1)
	go f.loop(ctx)
}

// stop waits for the loop and the blocking waits to end (the server is quiet), until ctx
// ends. A fetch still waiting for Redis then is left behind: whatever it takes stays in
// the in-flight hash.
func (f *fetcher) stop(ctx context.Context) {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	f.stopping.Store(true)
}

func (f *fetcher) isQuiet() bool {
	select {
	case <-f.quiet:
		return true
	default:
		return false
	}
}

func (f *fetcher) loop(ctx context.Context) {
	defer f.wg.Done()
	bo := newBackoff(50*time.Millisecond, 5*time.Second)
	for !f.isQuiet() {
		free := f.freeSlots()
		if free <= 0 || !f.worthFetching(free) {
			f.waitFreed()
			continue
		}
		budget := f.prefetchBytes - f.reg.queued.Load()
		if budget <= 0 {
			f.waitFreed() // workers have bytes enough waiting for them
			continue
		}
		n, err := f.fetchBatch(ctx, free, budget)
		if err != nil {
			d := bo.next()
			if ctx.Err() == nil {
				f.log.Warn("fetch failed; retrying", logcap.Error(err), zap.Duration("in", d))
			}
			f.pause(d)
			continue
		}
		bo.reset()
		if n > 0 {
			continue
		}
		// Nothing to do: wait in Redis on every queue that may still give a job.
		if !f.waitForJobs(ctx) {
			f.waitFreed() // every queue is at its cap: wait for a job to finish
		}
	}
}

func (f *fetcher) waitFreed() {
	select {
	case <-f.reg.freed:
	case <-f.quiet:
	}
}

func (f *fetcher) pause(d time.Duration) {
	select {
	case <-time.After(d):
	case <-f.quiet:
	}
}

// freeSlots is how many more jobs may be taken now.
func (f *fetcher) freeSlots() int {
	return f.concurrency + f.prefetchNow() - int(f.reg.outstanding.Load())
}

// worthFetching batches refills: fetch when a worker is (about to be) idle, or when at
// least half the prefetch room is free, so a busy server moves jobs in large batches
// instead of one round trip per finished job.
func (f *fetcher) worthFetching(free int) bool {
	if int(f.reg.outstanding.Load()) < f.concurrency {
		return true
	}
	return free >= (f.prefetchNow()+1)/2
}

// prefetchHorizon is how much work, in time, a server fetches ahead of its workers.
const prefetchHorizon = 10 * time.Millisecond

// prefetchNow is how many jobs to fetch ahead now: what the workers would finish within
// prefetchHorizon at the average job duration observed, at most Config.Prefetch.
func (f *fetcher) prefetchNow() int {
	if f.prefetch <= 0 {
		return 0
	}
	avg := f.avgJobNanos.Load()
	if avg <= 0 {
		return min(f.prefetch, f.concurrency)
	}
	return int(min(int64(f.prefetch), int64(f.concurrency)*int64(prefetchHorizon)/avg))
}

// observeDuration folds one job's run time into the moving average prefetch uses.
// Concurrent updates may overwrite each other; the average stays a fair estimate.
func (f *fetcher) observeDuration(d time.Duration) {
	n := max(int64(d), 1)
	old := f.avgJobNanos.Load()
	if old == 0 {
		f.avgJobNanos.Store(n)
		return
	}
	f.avgJobNanos.Store(old + (n-old)/16)
}

// allowances is, per queue, how many more jobs its cap allows (-1: no cap).
func (f *fetcher) allowances() []int {
	out := make([]int, len(f.specs))
	for i, q := range f.specs {
		if q.limit == 0 {
			out[i] = -1
			continue
		}
		out[i] = max(0, q.limit-int(f.reg.queueBusy[i].Load()))
	}
	return out
}

// fetchBatch takes up to free jobs (and about budget bytes) and dispatches them.
func (f *fetcher) fetchBatch(ctx context.Context, free int, budget int64) (int, error) {
	order, picks := f.order.order(free)
	base := f.reg.reserve(free)
	req := fetchRequest{order: order, allow: f.allowances(), picks: picks, want: free, budget: budget, base: base}
	units, err := f.store.fetch(ctx, req)
	if err != nil {
		f.obs.redisError("fetch", err)
		// The call may have moved jobs with the reply lost: take exactly those.
		units = f.adopt(ctx, base, base+uint64(free), err)
		if units == nil {
			return 0, err
		}
	}
	f.dispatch(units)
	return len(units), nil
}

// adopt reads the entries of a failed fetch, retrying until Redis answers or the server
// quiets. Until then the seqs stay pending, so the reconciler leaves the entries alone;
// if the server stops first they are pushed back with everything else in the hash.
func (f *fetcher) adopt(ctx context.Context, lo, hi uint64, cause error) []*unit {
	bo := newBackoff(50*time.Millisecond, 2*time.Second)
	for {
		units, err := f.store.adopt(ctx, lo, hi)
		if err == nil {
			if len(units) > 0 {
				f.log.Warn("a fetch reply was lost; running the jobs it took", zap.Int("jobs", len(units)),
					zap.Uint64("from_seq", lo+1), zap.Uint64("to_seq", hi), logcap.Error(cause))
			}
			return units
		}
		if f.isQuiet() {
			return nil
		}
		f.pause(bo.next())
	}
}

// dispatch holds fetched jobs and hands them to the workers.
func (f *fetcher) dispatch(units []*unit) {
	if len(units) == 0 {
		f.reg.settleFetch()
		return
	}
	f.reg.hold(units)
	f.reg.settleFetch()
	if len(f.obs) > 0 {
		counts := make([]int, len(f.specs))
		for _, u := range units {
			counts[u.q]++
		}
		for q, n := range counts {
			if n > 0 {
				f.obs.fetched(f.specs[q].name, n)
			}
		}
	}
	for _, u := range units {
		if f.stopping.Load() {
			return // held in Redis only: the stop's end pushes it back
		}
		f.exec.dispatch(u)
	}
}

// waitForJobs starts a blocking wait on each queue that may give a job and has none in
// progress, and returns once one of them returns (true), or false at once when every
// queue is at its cap.
func (f *fetcher) waitForJobs(ctx context.Context) bool {
	allow := f.allowances()
	open := false
	f.waitMu.Lock()
	for i := range f.specs {
		if allow[i] == 0 {
			continue
		}
		open = true
		if f.waiting[i] {
			continue
		}
		f.waiting[i] = true
		f.wg.Add(1)
		go f.waitOn(ctx, i)
	}
	f.waitMu.Unlock()
	if !open {
		return false
	}
	select {
	case <-f.wake:
	case <-f.quiet:
	}
	return true
}

// waitOn waits up to FetchTimeout for a job on queue i, then wakes the loop.
func (f *fetcher) waitOn(ctx context.Context, i int) {
	defer f.wg.Done()
	_, err := f.store.waitForJob(ctx, i, f.fetchTimeout)
	if err != nil && ctx.Err() == nil && !f.isQuiet() {
		f.obs.redisError("wait", err)
		f.log.Warn("waiting for jobs failed", zap.String("queue", f.specs[i].name), logcap.Error(err))
		f.pause(time.Second)
	}
	f.waitMu.Lock()
	f.waiting[i] = false
	f.waitMu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// backoff grows a wait exponentially with jitter, for retrying Redis errors without
// hammering a Redis that is down.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur/2 + time.Duration(randInt64n(int64(b.cur/2)+1))
}

func (b *backoff) reset() { b.cur = 0 }
