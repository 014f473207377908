package sidekiq

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// The recoverer returns the jobs of Ferry processes that died (kill -9, a lost machine) to
// the head of their queues. A process is dead when its heartbeat hash has expired
// (ProcessTTL after its last beat). Each in-flight hash is emptied in the same Lua call
// that checks the owner is dead and pushes the jobs back, so a job is recovered once, by
// one process, even when many processes recover at the same time. In-progress lists left
// by Ferry versions before the in-flight hash are recovered the same way.
type recoverer struct {
	store    *store
	log      *zap.Logger
	obs      observers
	identity string
	interval time.Duration

	cancel context.CancelFunc
	done   chan struct{}
}

func newRecoverer(st *store, log *zap.Logger, obs observers, identity string, interval time.Duration) *recoverer {
	return &recoverer{store: st, log: log, obs: obs, identity: identity, interval: interval, done: make(chan struct{})}
}

func (r *recoverer) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	go r.loop(ctx)
}

// stop ends the loop and waits for it until ctx ends (a call to a Redis that hangs is
// left behind).
func (r *recoverer) stop(ctx context.Context) {
	r.cancel()
	waitDone(ctx, r.done)
}

func (r *recoverer) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if n, err := r.recoverDead(ctx); err != nil {
			if ctx.Err() == nil {
				r.obs.redisError("recover", err)
				r.log.Warn("recovering jobs of dead processes failed", logcap.Error(err))
			}
		} else if n > 0 {
			r.log.Info("recovered jobs of dead processes", zap.Int("jobs", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recoverDead returns the in-flight jobs of every dead Ferry process to their queues.
func (r *recoverer) recoverDead(ctx context.Context) (int, error) {
	owners, err := r.store.inflightOwners(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, o := range owners {
		if o.identity == r.identity {
			continue
		}
		n, err := r.store.recoverOwner(ctx, o)
		if err != nil {
			return total, err
		}
		if n > 0 {
			total += n
			r.log.Info("recovered jobs of a dead process", zap.String("dead_identity", o.identity), zap.Int("jobs", n))
		}
	}
	return total, nil
}
