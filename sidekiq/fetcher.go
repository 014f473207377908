package sidekiq

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The fetcher keeps the workers fed. While queues have work it moves jobs in batches (one
// Lua call moves as many jobs as there are free slots); when they are empty it blocks in
// Redis with BLMOVE, one call per queue, so a job pushed to an idle server starts within
// milliseconds. Every job it takes is moved atomically into this process's in-progress list
// for its queue: a job is never only in memory.

func (s *Server) fetchLoop() {
	defer s.fetchers.Done()
	var waiting = make([]bool, len(s.specs))
	var waitMu sync.Mutex
	wake := make(chan struct{}, 1)
	backoff := newBackoff(50*time.Millisecond, 5*time.Second)
	for {
		if s.isQuiet() {
			return
		}
		free := s.freeSlots()
		if free <= 0 || !s.worthFetching(free) {
			select {
			case <-s.freed:
			case <-s.quietCh:
			}
			continue
		}
		n, err := s.fetchBatch(s.bgCtx, free)
		if err != nil {
			d := backoff.next()
			s.log.Warn("fetch failed; retrying", zap.Error(err), zap.Duration("in", d))
			select {
			case <-time.After(d):
			case <-s.quietCh:
			}
			continue
		}
		backoff.reset()
		if n > 0 {
			continue
		}
		// Nothing to do: block in Redis on every queue that may still give a job.
		allow := s.allowances()
		started := 0
		waitMu.Lock()
		for i := range s.specs {
			if waiting[i] || allow[i] == 0 {
				continue
			}
			waiting[i] = true
			started++
			s.fetchers.Add(1)
			go func(i int) {
				defer s.fetchers.Done()
				s.blockingFetch(i)
				waitMu.Lock()
				waiting[i] = false
				waitMu.Unlock()
				select {
				case wake <- struct{}{}:
				default:
				}
			}(i)
		}
		waitMu.Unlock()
		if started == 0 && allAtCap(allow) {
			// Every queue is at its cap: wait for a job to finish.
			select {
			case <-s.freed:
			case <-s.quietCh:
			}
			continue
		}
		select {
		case <-wake:
		case <-s.quietCh:
		}
	}
}

func allAtCap(allow []int) bool {
	for _, a := range allow {
		if a != 0 {
			return false
		}
	}
	return true
}

// freeSlots is how many more jobs may be taken now.
func (s *Server) freeSlots() int {
	return s.cfg.Concurrency + s.prefetch() - int(s.outstanding.Load())
}

// worthFetching batches refills: fetch when a worker is (about to be) idle, or when at
// least half the prefetch room is free, so a busy server moves jobs in large batches
// instead of one round trip per finished job.
func (s *Server) worthFetching(free int) bool {
	if int(s.outstanding.Load()) < s.cfg.Concurrency {
		return true
	}
	return free >= (s.prefetch()+1)/2
}

// prefetchHorizon is how much work, in time, a server fetches ahead of its workers.
const prefetchHorizon = 10 * time.Millisecond

// prefetch is how many jobs to fetch ahead now: what the workers would finish within
// prefetchHorizon at the average job duration observed, at most Config.Prefetch.
func (s *Server) prefetch() int {
	if s.cfg.Prefetch <= 0 {
		return 0
	}
	avg := s.avgJobNanos.Load()
	if avg <= 0 {
		return min(s.cfg.Prefetch, s.cfg.Concurrency)
	}
	return int(min(int64(s.cfg.Prefetch), int64(s.cfg.Concurrency)*int64(prefetchHorizon)/avg))
}

// observeDuration folds one job's run time into the moving average prefetch uses.
// Concurrent updates may overwrite each other; the average stays a fair estimate.
func (s *Server) observeDuration(d time.Duration) {
	n := max(int64(d), 1)
	old := s.avgJobNanos.Load()
	if old == 0 {
		s.avgJobNanos.Store(n)
		return
	}
	s.avgJobNanos.Store(old + (n-old)/16)
}

// allowances is, per queue, how many more jobs its cap allows (-1: no cap).
func (s *Server) allowances() []int {
	out := make([]int, len(s.specs))
	for i, q := range s.specs {
		if q.limit == 0 {
			out[i] = -1
			continue
		}
		out[i] = max(0, q.limit-int(s.queueBusy[i].Load()))
	}
	return out
}

// fetchBatch moves up to free jobs into the in-progress lists and dispatches them.
func (s *Server) fetchBatch(ctx context.Context, free int) (int, error) {
	s.orderMu.Lock()
	order, picks := s.order.order(free)
	s.orderMu.Unlock()
	allow := s.allowances()
	n := len(order)
	keys := make([]string, 0, 2*n)
	for _, i := range order {
		keys = append(keys, s.qkeys[i])
	}
	for _, i := range order {
		keys = append(keys, s.pkeys[i])
	}
	keys = append(keys, s.keys.inprogressIndex())
	pos := make([]int, len(s.specs)) // spec index -> 1-based position in keys
	for p, i := range order {
		pos[i] = p + 1
	}
	args := make([]any, 0, 1+2*n+len(picks))
	args = append(args, free)
	for _, i := range order {
		args = append(args, allow[i])
	}
	for _, i := range order {
		args = append(args, s.owners[i])
	}
	for _, pk := range picks {
		args = append(args, pos[pk])
	}
	res, err := fetchScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		// The jobs may have been moved with the reply lost.
		s.reconcile.markSuspect()
		s.observers.redisError("fetch", err)
		return 0, err
	}
	got := 0
	var perQueue []int
	if len(s.observers) > 0 {
		perQueue = make([]int, len(s.specs))
	}
	for k := 0; k+1 < len(res); k += 2 {
		p, _ := res[k].(int64)
		raw, _ := res[k+1].(string)
		if p < 1 || int(p) > n {
			continue
		}
		s.dispatch(&unit{q: order[p-1], raw: raw})
		got++
		if perQueue != nil {
			perQueue[order[p-1]]++
		}
	}
	for q, n := range perQueue {
		if n > 0 {
			s.observers.fetched(s.specs[q].name, n)
		}
	}
	return got, nil
}

// blockingFetch waits up to FetchTimeout for a job on queue i.
func (s *Server) blockingFetch(i int) {
	// Register the list before blocking on it (see fetchScript): a job BLMOVE puts there
	// must never sit in a list no recoverer knows of.
	if err := s.registerList(i); err != nil {
		s.pauseAfterFetchError(i, err)
		return
	}
	raw, err := s.rdb.BLMove(s.bgCtx, s.qkeys[i], s.pkeys[i], "RIGHT", "LEFT", s.cfg.FetchTimeout).Result()
	if errors.Is(err, redis.Nil) {
		return
	}
	if err != nil {
		s.reconcile.markSuspect()
		s.observers.redisError("fetch", err)
		s.pauseAfterFetchError(i, err)
		return
	}
	if s.isQuiet() {
		// Fetched after quiet began: give it back, as Sidekiq does.
		s.requeueOne(&unit{q: i, raw: raw})
		return
	}
	// And again after: a recoverer may have dropped the list while this call blocked.
	if err := s.registerList(i); err != nil {
		s.log.Warn("registering the in-progress list failed; the next heartbeat does it", zap.Error(err))
	}
	s.observers.fetched(s.specs[i].name, 1)
	s.dispatch(&unit{q: i, raw: raw})
}

// registerList (re)registers queue i's in-progress list in the in-progress index.
func (s *Server) registerList(i int) error {
	return s.rdb.HSet(s.bgCtx, s.keys.inprogressIndex(), s.pkeys[i], s.owners[i]).Err()
}

// pauseAfterFetchError logs a failed blocking fetch and waits a second (less if quiet
// begins) before the next try; a fetch ended by shutdown is not logged.
func (s *Server) pauseAfterFetchError(i int, err error) {
	if s.bgCtx.Err() != nil {
		return
	}
	s.log.Warn("blocking fetch failed", zap.String("queue", s.specs[i].name), zap.Error(err))
	select {
	case <-time.After(time.Second):
	case <-s.quietCh:
	}
}

func (s *Server) dispatch(u *unit) {
	s.reconcile.hold(u)
	s.outstanding.Add(1)
	s.queueBusy[u.q].Add(1)
	s.work <- u
}

// release frees the slot of a finished (or requeued) job.
func (s *Server) release(u *unit) {
	s.queueBusy[u.q].Add(-1)
	s.outstanding.Add(-1)
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// requeueOne puts a job this process holds back at the head of its queue.
func (s *Server) requeueOne(u *unit) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.bgCtx), 5*time.Second)
	defer cancel()
	if err := requeueOneScript.Run(ctx, s.rdb, []string{s.pkeys[u.q], s.qkeys[u.q]}, u.raw).Err(); err != nil {
		// It stays in the in-progress list; the reconciler, the shutdown requeue or a
		// recoverer returns it.
		s.reconcile.markSuspect()
		s.log.Warn("requeueing a job failed; it stays in the in-progress list", zap.Error(err))
	}
}

// registerInProgress records this process's in-progress lists in the index recoverers read.
func (s *Server) registerInProgress(ctx context.Context) error {
	return s.rdb.HSet(ctx, s.keys.inprogressIndex(), s.inProgressFields()...).Err()
}

// inProgressFields are this process's entries in the in-progress index. Every heartbeat
// writes them again: if a heartbeat came late enough for another process to take this
// one's jobs (and drop its lists from the index), the lists it keeps filling must be
// indexed again, or a later crash would leave their jobs where no recoverer looks.
func (s *Server) inProgressFields() []any {
	fields := make([]any, 0, 2*len(s.specs))
	for i := range s.specs {
		fields = append(fields, s.pkeys[i], s.owners[i])
	}
	return fields
}

// inProgressOwner is the index value naming a list's process and queue.
func inProgressOwner(identity, queue string) string {
	return strconv.Quote(identity) + " " + strconv.Quote(queue)
}

func parseInProgressOwner(v string) (identity, queue string, ok bool) {
	id, rest, err := unquotePrefix(v)
	if err != nil || len(rest) < 2 || rest[0] != ' ' {
		return "", "", false
	}
	q, rest, err := unquotePrefix(rest[1:])
	if err != nil || rest != "" {
		return "", "", false
	}
	return id, q, true
}

func unquotePrefix(s string) (string, string, error) {
	p, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	u, err := strconv.Unquote(p)
	return u, s[len(p):], err
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
