package locks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// WaitsKey is the payload key in which a job counts how many times in a row it found its
// worker lock held. It drives the backoff and is removed when the job gets the lock.
const WaitsKey = "ferry_lock_waits"

// ErrWorkerLockHeld is matched by the cause of the sidekiq.RetryIn a worker lock returns when
// another job holds the lock (a *WorkerLockHeldError).
var ErrWorkerLockHeld = errors.New("locks: worker lock held")

// ErrLeaseLost is the cause (context.Cause) of a handler's cancelled context when its
// worker lock lease was lost while it ran, and is matched by the job's error then.
var ErrLeaseLost = errors.New("locks: worker lock lease lost")

// WorkerLockHeldError says which job held the worker lock a job wanted.
type WorkerLockHeldError struct {
	// Key is the worker lock key, with Redis namespace.
	Key string
	// Holder is the jid of the job holding it.
	Holder string
}

func (e *WorkerLockHeldError) Error() string {
	return fmt.Sprintf("locks: worker lock %s held by job %s", e.Key, e.Holder)
}

// Is matches ErrWorkerLockHeld.
func (e *WorkerLockHeldError) Is(target error) bool { return target == ErrWorkerLockHeld }

// Worker is a worker lock: at most one job with the same lock key runs at a time, across
// every process working the Redis. Install it with Server.Use; make it with WorkerLock.
type Worker struct {
	sidekiq.MiddlewareDefaults
	rdb     redis.UniversalClient
	cfg     config
	refused logcap.Once // a payload's PayloadKey was invalid: logged once
}

// WorkerLock returns a worker lock that takes its leases in rdb (the Redis the Server
// works). See the package documentation for the semantics and the key.
func WorkerLock(rdb redis.UniversalClient, opts ...WorkerOption) *Worker {
	return &Worker{rdb: rdb, cfg: newWorkerConfig(opts)}
}

func (w *Worker) applies(job *sidekiq.Job) bool {
	return w.cfg.classes == nil || w.cfg.classes[job.Class]
}

// KeyFor returns the worker lock key of job (without Redis namespace).
func (w *Worker) KeyFor(job *sidekiq.Job) (string, error) {
	if job.IsActiveJob() {
		return "", fmt.Errorf("job %s: %w", job.JID, ErrActiveJob)
	}
	in, err := JobInputs(job)
	if err != nil {
		return "", err
	}
	ns := w.cfg.namespace
	if ns == "" {
		ns = job.Class
	}
	d, err := Digest(ns, in, w.cfg.inputs)
	if err != nil {
		return "", fmt.Errorf("job %s: %w", job.JID, err)
	}
	return WorkerKeyPrefix + d, nil
}

// Delay returns how long a job waits after its n-th consecutive contention (n ≥ 1):
// base·2^(n-1), at most the cap, minus a random jitter of up to half of that.
func (w *Worker) Delay(n int) time.Duration {
	d := w.cfg.backoffBase
	for i := 1; i < n && d < w.cfg.backoffCap; i++ {
		d *= 2
	}
	d = min(d, w.cfg.backoffCap)
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return d - time.Duration(rand.Int64N(half+1))
}

// InterceptRun takes the lease, runs the rest of the chain while renewing it, and releases
// it. When another job holds the lock the job is rescheduled with sidekiq.RetryIn (no retry
// used, nothing recorded as a failure) after a backoff; see the package documentation.
//
// A job whose lock key cannot be computed (args[0] is not a JSON object, or an ActiveJob
// payload) goes to the dead set (sidekiq.Discard): running it unlocked would break the
// lock, and retrying cannot help. If Redis cannot be reached to take the lease the job
// fails and is retried.
func (w *Worker) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) (err error) {
	if !w.applies(job) {
		return next(ctx)
	}
	key, err := w.KeyFor(job)
	if err != nil {
		return sidekiq.Discard(fmt.Errorf("locks: worker lock: %w", err))
	}
	full := w.cfg.keyPrefix + key
	lease := w.cfg.lease
	sent := time.Now() // the lease is good until at least sent+lease
	holder, err := acquireScript.Run(ctx, w.rdb, []string{full}, job.JID, lease.Milliseconds()).Text()
	if err != nil {
		return fmt.Errorf("locks: take worker lock %s for job %s: %w", full, job.JID, err)
	}
	if holder != "" {
		return w.contended(ctx, job, full, holder)
	}
	if err := job.Set(WaitsKey, nil); err != nil {
		w.cfg.logger.Warn("clearing the worker lock wait count failed", logcap.String("jid", job.JID), zap.Error(err))
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var lost bool // written by renew before it returns; read after wg.Wait
	wg.Add(1)
	go func() {
		defer wg.Done()
		lost = w.renew(runCtx, stop, job.JID, full, sent.Add(lease), cancel)
	}()
	// Deferred, so a panicking handler (recovered by the Server) stops the renewal and
	// frees the lock too.
	defer func() {
		close(stop)
		wg.Wait()
		cancel(nil)
		bg, bgCancel := context.WithTimeout(context.WithoutCancel(ctx), lockOpTimeout)
		defer bgCancel()
		if rerr := releaseScript.Run(bg, w.rdb, []string{full}, job.JID).Err(); rerr != nil {
			w.cfg.logger.Warn("worker lock not released; it expires with its lease",
				logcap.String("jid", job.JID), zap.String("key", full), zap.Duration("lease", lease), zap.Error(rerr))
		}
		if lost && err != nil {
			err = fmt.Errorf("%w: %w", ErrLeaseLost, err)
		}
	}()
	return next(runCtx)
}

// contended counts the contention in the payload, keeps a queue lock that a queue lock
// earlier in the chain will not keep, and reschedules the job.
func (w *Worker) contended(ctx context.Context, job *sidekiq.Job, full, holder string) error {
	var n int
	if ok, err := job.Get(WaitsKey, &n); !ok || err != nil || n < 0 {
		n = 0
	}
	n++
	if err := job.Set(WaitsKey, n); err != nil {
		return fmt.Errorf("locks: worker lock: %w", err)
	}
	delay := w.Delay(n)
	if ctx.Value(queueRunKey{}) == nil {
		// A queue lock's run side, if any, comes after this one and never sees the
		// reschedule: keep the job's queue lock for the delay here.
		if qkey := payloadQueueKey(job, &w.refused, w.cfg.logger); qkey != "" {
			if err := postponeScript.Run(ctx, w.rdb, []string{w.cfg.keyPrefix + qkey}, job.JID, delay.Milliseconds()).Err(); err != nil {
				w.cfg.logger.Warn("queue lock of a rescheduled job not extended", logcap.String("jid", job.JID), zap.Error(err))
			}
		}
	}
	return sidekiq.RetryIn(delay, &WorkerLockHeldError{Key: full, Holder: holder})
}

// renew extends the lease every third of it until stop is closed; valid is when the lease
// taken runs out at the earliest (monotonic clock). If the lease is lost
// (another jid holds the key, it is gone, or Redis could not confirm a renewal before the
// lease ran out) it logs, cancels the handler's context with ErrLeaseLost and returns true.
func (w *Worker) renew(ctx context.Context, stop <-chan struct{}, jid, key string, valid time.Time, cancel context.CancelCauseFunc) bool {
	lease := w.cfg.lease
	tick := time.NewTicker(lease / 3)
	defer tick.Stop()
	log := w.cfg.logger.With(logcap.String("jid", jid), zap.String("key", key))
	for {
		select {
		case <-stop:
			return false
		case <-tick.C:
		}
		callCtx, callCancel := context.WithTimeout(context.WithoutCancel(ctx), lease/3)
		sent := time.Now()
		ok, err := renewScript.Run(callCtx, w.rdb, []string{key}, jid, lease.Milliseconds()).Int()
		callCancel()
		switch {
		case err == nil && ok == 1:
			valid = sent.Add(lease)
			continue
		case err == nil:
			log.Error("worker lock lease lost while the job runs (expired or taken by another job); cancelling the job")
		case time.Now().Before(valid):
			log.Warn("worker lock lease renewal failed; trying again", zap.Error(err))
			continue
		default:
			log.Error("worker lock lease could not be renewed before it ran out; cancelling the job", zap.Error(err))
		}
		cancel(ErrLeaseLost)
		return true
	}
}
