package locks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// PayloadKey is the payload key under which a push records the queue lock key it took
// (without Redis namespace), so the server releases exactly that key without recomputing
// it. The server honours it only in the form the push writes, "ferry:lock:queue:<64
// lowercase hex>" (ValidQueueKey); any other value counts as absent.
const PayloadKey = "ferry_queue_lock"

// ValidQueueKey reports whether key is a queue lock key as Key and KeyFor make it:
// QueueKeyPrefix and a lowercase hex SHA-256. A payload's PayloadKey must pass it before
// the run side, or a worker lock, touches the key: a payload is untrusted and must not
// name Sidekiq's keys (queue:*, retry, stat:processed, ...) or another lock's.
func ValidQueueKey(key string) bool {
	rest, ok := strings.CutPrefix(key, QueueKeyPrefix)
	return ok && len(rest) == 64 && isLowerHex(rest)
}

// payloadQueueKey returns the job's PayloadKey if it is a valid queue lock key, else "".
// An invalid one is logged through once, the first time per middleware.
func payloadQueueKey(job *sidekiq.Job, once *logcap.Once, log *zap.Logger) string {
	var key string
	if found, err := job.Get(PayloadKey, &key); !found || err != nil || key == "" {
		return ""
	}
	if !ValidQueueKey(key) {
		if reason := PayloadKey + " is not a queue lock key"; once.First(reason) {
			log.Warn(reason+"; ignored (logged once, not per job)", logcap.String("jid", job.JID),
				logcap.String("class", job.Class), logcap.String("key", key))
		}
		return ""
	}
	return key
}

// lockOpTimeout bounds the Redis calls a lock makes outside the job's own context (release
// and keep after the chain returned).
const lockOpTimeout = 5 * time.Second

// ErrActiveJob is matched by the push error for an ActiveJob payload, whose inputs the
// lock cannot read.
var ErrActiveJob = errors.New("locks: ActiveJob payloads cannot take a queue lock")

// ErrQueueLocked is matched by *QueueLockedError.
var ErrQueueLocked = errors.New("locks: queue lock held")

// QueueLockedError is the push error of the Error conflict policy.
type QueueLockedError struct {
	// Key is the queue lock key, without Redis namespace.
	Key string
	// Holder is the jid of the job holding it.
	Holder string
}

func (e *QueueLockedError) Error() string {
	return fmt.Sprintf("locks: queue lock %s held by job %s", e.Key, e.Holder)
}

// Is matches ErrQueueLocked (and not sidekiq.ErrPushStopped).
func (e *QueueLockedError) Is(target error) bool { return target == ErrQueueLocked }

// Queue is a unique queue lock: install the same value with Client.Use (the push side takes
// the lock) and Server.Use (the run side releases it when the job starts). Make it with
// QueueLock.
type Queue struct {
	sidekiq.MiddlewareDefaults
	rdb     redis.UniversalClient
	cfg     config
	refused logcap.Once // a payload's PayloadKey was invalid: logged once
}

// QueueLock returns a queue lock whose run side releases locks through rdb (the Redis the
// Server works). See the package documentation for the semantics and the key.
func QueueLock(rdb redis.UniversalClient, opts ...QueueOption) *Queue {
	return &Queue{rdb: rdb, cfg: newQueueConfig(opts)}
}

func (q *Queue) applies(job *sidekiq.Job) bool {
	return q.cfg.classes == nil || q.cfg.classes[job.Class]
}

// KeyFor returns the queue lock key of job (without Redis namespace).
func (q *Queue) KeyFor(job *sidekiq.Job) (string, error) {
	if job.IsActiveJob() {
		return "", fmt.Errorf("job %s: %w", job.JID, ErrActiveJob)
	}
	in, err := JobInputs(job)
	if err != nil {
		return "", err
	}
	ns := q.cfg.namespace
	if ns == "" {
		ns = job.Class
	}
	d, err := Digest(ns, in, q.cfg.inputs)
	if err != nil {
		return "", fmt.Errorf("job %s: %w", job.JID, err)
	}
	return QueueKeyPrefix + d, nil
}

// InterceptPush takes the lock in the push's own Lua call.
func (q *Queue) InterceptPush(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	if !q.applies(job) {
		return next(ctx)
	}
	key, err := q.KeyFor(job)
	if err != nil {
		return fmt.Errorf("locks: queue lock: %w", err)
	}
	if err := job.Set(PayloadKey, key); err != nil {
		return fmt.Errorf("locks: queue lock: %w", err)
	}
	guard := sidekiq.PushGuard{
		Key:       key,
		TTL:       q.cfg.ttl + max(sidekiq.PushDelay(ctx), 0),
		Reentrant: true,
		Replace:   q.cfg.conflict == Replace,
	}
	err = next(sidekiq.WithPushGuards(ctx, guard))
	var held *sidekiq.PushStoppedError
	if q.cfg.conflict == Error && errors.As(err, &held) && held.Key == key {
		return &QueueLockedError{Key: key, Holder: held.JID}
	}
	return err
}

// queueRunKey marks a context in which a queue lock's run side is active, so a worker lock
// further down the chain leaves keeping the queue lock over a reschedule to it.
type queueRunKey struct{}

// InterceptRun releases the lock when the handler starts (sidekiq.OnHandlerStart), if this
// job still holds it, wherever the lock sits in the middleware chain. A job whose lock has
// expired (or was replaced) runs all the same. If Redis cannot be reached the job fails and
// is retried: running it with the lock still held would drop identical pushes made while it
// runs.
//
// When a later middleware reschedules the job before its handler starts (sidekiq.RetryIn,
// as a held worker lock does), the lock stays with the job: it is set to the job's jid
// again, if free or still the job's, for the delay plus TTL, so identical pushes keep
// collapsing onto the waiting job. When the chain ends in any other way without starting
// the handler (a middleware failed the job, or completed it without running it), the lock
// is released then.
func (q *Queue) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) (err error) {
	key := payloadQueueKey(job, &q.refused, q.cfg.logger)
	if key == "" {
		if !q.applies(job) {
			return next(ctx)
		}
		var gerr error
		if key, gerr = q.KeyFor(job); gerr != nil {
			// Not a named-inputs job: it cannot have been locked by this rule.
			return next(ctx)
		}
	}
	full := q.cfg.keyPrefix + key
	started := false
	ctx = sidekiq.OnHandlerStart(ctx, func(ctx context.Context) error {
		started = true
		if err := releaseScript.Run(ctx, q.rdb, []string{full}, job.JID).Err(); err != nil {
			return fmt.Errorf("locks: release queue lock %s of job %s: %w", key, logcap.Cut(job.JID, logcap.Max), err)
		}
		return nil
	})
	defer func() {
		if started {
			return
		}
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockOpTimeout)
		defer cancel()
		log := q.cfg.logger.With(logcap.String("jid", job.JID), zap.String("key", full))
		var rin *sidekiq.RetryInError
		if errors.As(err, &rin) {
			ttl := q.cfg.ttl + max(rin.Delay, 0)
			if herr := holdScript.Run(bg, q.rdb, []string{full}, job.JID, ttl.Milliseconds()).Err(); herr != nil {
				log.Warn("queue lock not kept for a rescheduled job; identical pushes may be accepted while it waits", zap.Error(herr))
			}
			return
		}
		if rerr := releaseScript.Run(bg, q.rdb, []string{full}, job.JID).Err(); rerr != nil {
			log.Warn("queue lock not released; it expires with its TTL", zap.Error(rerr))
		}
	}()
	return next(context.WithValue(ctx, queueRunKey{}, true))
}
