package sidekiq

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// The reconciler gives back jobs stranded in this process's own in-flight hash. Only the
// fetcher puts entries there, and it holds every job it takes, adopting the entries of a
// fetch whose reply was lost (fetcher.go). So an entry that nothing holds, outside the seqs
// of the fetch in flight, is stranded: by a reply that was lost in a way no error showed,
// or by a bug. The reconciler compares the hash with the register every reconcileEvery
// heartbeat intervals, and pushes strays back to the head of their queues, so they run,
// here or elsewhere, once more rather than never. A live process's hash is never touched
// by recoverers, so without this a stray would wait until the process stops.
type reconciler struct {
	store    *store
	reg      *register
	log      *zap.Logger
	obs      observers
	interval time.Duration // between checks
	quiet    <-chan struct{}

	checks atomic.Int64 // checks made, for tests
	cancel context.CancelFunc
	done   chan struct{}
}

// reconcileEvery is how many heartbeat intervals pass between two checks.
const reconcileEvery = 3

// reconcileReadTimeout bounds a check's read.
const reconcileReadTimeout = 2 * time.Second

func newReconciler(st *store, reg *register, log *zap.Logger, obs observers, interval time.Duration, quiet <-chan struct{}) *reconciler {
	return &reconciler{store: st, reg: reg, log: log, obs: obs, interval: interval, quiet: quiet, done: make(chan struct{})}
}

func (r *reconciler) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	go r.loop(ctx)
}

// stop ends the loop and waits for it until ctx ends (a call to a Redis that hangs is
// left behind).
func (r *reconciler) stop(ctx context.Context) {
	r.cancel()
	waitDone(ctx, r.done)
}

func (r *reconciler) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.quiet:
			return // the stop pushes every entry back anyway
		case <-t.C:
		}
		if err := r.check(ctx); err != nil && ctx.Err() == nil {
			r.obs.redisError("reconcile", err)
			r.log.Warn("reading the in-flight hash to compare with the jobs held failed; trying again next interval", logcap.Error(err))
		}
	}
}

// check reads the hash and pushes back the entries nothing holds.
func (r *reconciler) check(ctx context.Context) error {
	defer r.checks.Add(1)
	rctx, cancel := context.WithTimeout(ctx, min(reconcileReadTimeout, r.interval))
	defer cancel()
	fields, err := r.store.inflightFields(rctx)
	if err != nil {
		return err
	}
	strays := r.reg.unheld(fields)
	if len(strays) == 0 {
		return nil
	}
	n, err := r.store.requeueFields(ctx, strays)
	if err != nil {
		return err
	}
	if n > 0 {
		r.log.Warn("jobs stranded in this process's in-flight hash (a fetch reply was lost); pushed back to their queues",
			zap.Int("jobs", n), zap.Strings("fields", strays[:min(len(strays), 10)]))
	}
	return nil
}
