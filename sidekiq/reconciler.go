package sidekiq

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The reconciler gives back jobs stranded in this process's own in-progress lists. A fetch
// moves jobs into those lists in Redis and replies with them; if the reply is lost (the
// connection is cut, Redis restarts after the move reached its append-only file, a read
// times out), the jobs sit in the list of a live process that does not know it has them.
// No recoverer takes them, since the process is alive, and they would wait until it stops.
//
// So the server counts the jobs it holds: from dispatch until their removal from the list
// is confirmed (ack, outcome, requeue). It checks every reconcileEvery heartbeat intervals,
// and at every interval after a failed fetch or removal: it reads its lists while no
// holding can end, and takes as stranded the entries it does not hold. The periodic check
// is needed because a lost reply does not always surface as an error: go-redis retries a
// command whose connection broke, and the retried fetch moves and returns other jobs. An
// entry found unheld in two checks in a row (a fetch reply still on its way is held well
// within one interval) is pushed back to the head of its queue with the same LREM-guarded
// script as a requeue, so it is run, by this process or another, once more rather than
// never. Checks go on while any entry is unheld and stop once the lists and the holdings
// agree.
type reconciler struct {
	s *Server

	mu   sync.Mutex // guards held; kept across a check's LRANGE so no holding ends meanwhile
	held map[holdKey]int

	suspect    atomic.Bool     // a fetch or a removal failed since the last check
	candidates map[holdKey]int // unheld in the previous check; reconciler goroutine only
	checks     atomic.Int64    // checks made, for tests
}

// reconcileEvery is how many heartbeat intervals pass between checks when nothing failed.
const reconcileEvery = 3

// reconcileReadTimeout bounds the read a check makes while holdings cannot change.
const reconcileReadTimeout = 2 * time.Second

// holdKey names a list entry: the queue's spec index and the exact payload.
type holdKey struct {
	q   int
	raw string
}

func newReconciler(s *Server) *reconciler {
	return &reconciler{s: s, held: make(map[holdKey]int)}
}

// hold records that the process holds u (it is in u's in-progress list for this process).
func (r *reconciler) hold(u *unit) {
	r.mu.Lock()
	r.held[holdKey{u.q, u.raw}]++
	r.mu.Unlock()
}

// release records that u's entry has left the list, or that the process gave up on it.
func (r *reconciler) release(u *unit) {
	k := holdKey{u.q, u.raw}
	r.mu.Lock()
	if n := r.held[k]; n > 1 {
		r.held[k] = n - 1
	} else {
		delete(r.held, k)
	}
	r.mu.Unlock()
}

// markSuspect asks for a check: something may have been left in the lists unheld.
func (r *reconciler) markSuspect() { r.suspect.Store(true) }

func (r *reconciler) loop() {
	t := time.NewTicker(r.s.cfg.HeartbeatInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-r.s.bgCtx.Done():
			return
		case <-t.C:
		}
		if r.s.isQuiet() {
			continue // shutdown pushes every entry back anyway
		}
		if !r.suspect.Load() && r.candidates == nil && tick%reconcileEvery != 0 {
			continue
		}
		if err := r.check(r.s.bgCtx); err != nil && r.s.bgCtx.Err() == nil {
			r.s.log.Warn("checking the in-progress lists for stranded jobs failed; trying again", zap.Error(err))
		}
	}
}

// check reads the lists, requeues the entries unheld now and in the previous check, and
// keeps the rest of the unheld ones as candidates for the next check.
func (r *reconciler) check(ctx context.Context) error {
	defer r.checks.Add(1)
	r.suspect.Store(false)
	unheld, err := r.unheld(ctx)
	if err != nil {
		r.suspect.Store(true)
		return err
	}
	prev := r.candidates
	r.candidates = nil
	for k, n := range unheld {
		confirmed := min(n, prev[k])
		for range confirmed {
			r.s.log.Warn("job stranded in this process's in-progress list (a fetch reply was lost); pushing it back to its queue",
				zap.String("queue", r.s.specs[k.q].name))
			r.s.requeueOne(&unit{q: k.q, raw: k.raw})
		}
		if n > confirmed {
			if r.candidates == nil {
				r.candidates = make(map[holdKey]int)
			}
			r.candidates[k] = n - confirmed
		}
	}
	return nil
}

// unheld returns the entries of the lists that the process does not hold, by count. It
// keeps mu across the read, so a holding cannot end between the read and the comparison
// (which would make a job being acknowledged look stranded).
func (r *reconciler) unheld(ctx context.Context) (map[holdKey]int, error) {
	ctx, cancel := context.WithTimeout(ctx, min(reconcileReadTimeout, r.s.cfg.HeartbeatInterval))
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	cmds := make([]*redis.StringSliceCmd, len(r.s.pkeys))
	_, err := r.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range r.s.pkeys {
			cmds[i] = p.LRange(ctx, key, 0, -1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out map[holdKey]int
	seen := make(map[holdKey]int)
	for q, cmd := range cmds {
		for _, raw := range cmd.Val() {
			k := holdKey{q, raw}
			seen[k]++
			if seen[k] <= r.held[k] {
				continue
			}
			if out == nil {
				out = make(map[holdKey]int)
			}
			out[k]++
		}
	}
	return out, nil
}
