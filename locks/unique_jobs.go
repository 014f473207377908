package locks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/sidekiq"
)

// Lock types of sidekiq-unique-jobs, as they appear in a payload's "lock" field.
const (
	SUJUntilExecuting         = "until_executing"
	SUJUntilExecuted          = "until_executed"
	SUJUntilExpired           = "until_expired"
	SUJWhileExecuting         = "while_executing"
	SUJUntilAndWhileExecuting = "until_and_while_executing"
)

// Key names of sidekiq-unique-jobs v8 that are not derived from a digest.
const (
	SUJDigestsKey   = "uniquejobs:digests"
	SUJChangelogKey = "uniquejobs:changelog"
)

// DefaultSUJMaxHistory is how many changelog entries UniqueJobs keeps when writing one,
// the gem's max_history default.
const DefaultSUJMaxHistory = 1000

// ErrUnsupportedLock is matched by the run error of a job whose sidekiq-unique-jobs lock
// type UniqueJobs does not implement (while_executing, until_and_while_executing, or an
// unknown type).
var ErrUnsupportedLock = errors.New("locks: sidekiq-unique-jobs lock type not supported by Ferry")

// UnsupportedLockError is the run error for an unsupported sidekiq-unique-jobs lock type.
type UnsupportedLockError struct {
	// Type is the payload's lock type.
	Type string
	// JID is the job's jid.
	JID string
}

func (e *UnsupportedLockError) Error() string {
	return fmt.Sprintf("locks: job %s: sidekiq-unique-jobs lock %q is not supported by Ferry; run this class on Ruby Sidekiq", e.JID, e.Type)
}

// Is matches ErrUnsupportedLock.
func (e *UnsupportedLockError) Is(target error) bool { return target == ErrUnsupportedLock }

// UniqueOption configures UniqueJobs.
type UniqueOption func(*uniqueConfig)

type uniqueConfig struct {
	keyPrefix  string
	maxHistory int
	log        *zap.Logger
}

// UniqueRedisNamespace must equal the Namespace of the sidekiq.Config the middleware is
// installed in (redis-namespace): the gem's keys are then "<ns>:uniquejobs:...".
// Default: none.
func UniqueRedisNamespace(ns string) UniqueOption {
	return func(c *uniqueConfig) {
		c.keyPrefix = ""
		if ns != "" {
			c.keyPrefix = ns + ":"
		}
	}
}

// UniqueMaxHistory sets how many entries of uniquejobs:changelog are kept when an unlock
// writes one (the gem's max_history); 0 or less writes none. Default: DefaultSUJMaxHistory.
func UniqueMaxHistory(n int) UniqueOption { return func(c *uniqueConfig) { c.maxHistory = n } }

// UniqueLogger sets the logger for locks found held by another job. Default: no logging.
func UniqueLogger(l *zap.Logger) UniqueOption { return func(c *uniqueConfig) { c.log = l } }

// Unique is server middleware that releases sidekiq-unique-jobs locks of jobs pushed by
// Ruby with that gem. Make it with UniqueJobs.
type Unique struct {
	sidekiq.MiddlewareDefaults
	rdb redis.UniversalClient
	cfg uniqueConfig
}

// UniqueJobs returns server middleware for jobs locked by sidekiq-unique-jobs v8 (see the
// package documentation, "sidekiq-unique-jobs"). Install it with Server.Use and, so that a
// job that dies releases its lock as the gem's death handler does, set Config.OnDeath to
// its OnDeath method.
func UniqueJobs(rdb redis.UniversalClient, opts ...UniqueOption) *Unique {
	c := uniqueConfig{maxHistory: DefaultSUJMaxHistory}
	for _, o := range opts {
		o(&c)
	}
	if c.maxHistory < 0 {
		c.maxHistory = 0
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	return &Unique{rdb: rdb, cfg: c}
}

// sujLock is what a payload says about its sidekiq-unique-jobs lock.
type sujLock struct {
	typ    string
	digest string
	ttl    time.Duration
}

// sujLockOf reads the lock fields of job; ok is false when the job has no usable lock
// (no "lock" type, or no digest). Fields of the wrong JSON type count as absent: a
// malformed payload runs as an unlocked one.
func sujLockOf(job *sidekiq.Job) (l sujLock, ok bool) {
	if found, err := job.Get("lock", &l.typ); !found || err != nil || l.typ == "" {
		return l, false
	}
	for _, k := range []string{"lock_digest", "unique_digest"} {
		if found, err := job.Get(k, &l.digest); found && err == nil && l.digest != "" {
			break
		}
		l.digest = ""
	}
	if l.digest == "" {
		return l, false
	}
	for _, k := range []string{"lock_ttl", "lock_expiration"} {
		var secs float64
		if found, err := job.Get(k, &secs); found && err == nil && secs > 0 {
			l.ttl = time.Duration(secs * float64(time.Second))
			break
		}
	}
	return l, true
}

// InterceptRun releases the job's lock at the point the gem would: before the handler for
// until_executing (taking it back if the handler fails, so the retry stays unique), after
// a successful handler for until_executed (a failed run keeps it through its retries), and
// never for until_expired. A lock held by another jid is never touched, and the job runs
// even when it does not hold its lock (the gem would skip it). Jobs with while_executing,
// until_and_while_executing or an unknown lock type are not run: they fail with an
// *UnsupportedLockError, so they go through the retry set (where a Ruby process may take
// them) and are never lost.
func (u *Unique) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	l, ok := sujLockOf(job)
	if !ok {
		return next(ctx)
	}
	switch l.typ {
	case SUJUntilExecuting:
		if _, err := u.unlock(ctx, l.digest, job.JID); err != nil {
			return err
		}
		err := next(ctx)
		if err != nil {
			if rerr := u.relock(ctx, l, job.JID); rerr != nil {
				u.cfg.log.Warn("sidekiq-unique-jobs: could not take the lock back after a failed run",
					zap.String("jid", job.JID), zap.String("digest", l.digest), zap.Error(rerr))
			}
		}
		return err
	case SUJUntilExecuted:
		if err := next(ctx); err != nil {
			return err
		}
		if _, err := u.unlock(ctx, l.digest, job.JID); err != nil {
			// The job has run; failing it now would run it again. The lock stays until its
			// TTL, the gem's reaper, or a manual delete.
			u.cfg.log.Error("sidekiq-unique-jobs: unlock after a successful run failed",
				zap.String("jid", job.JID), zap.String("digest", l.digest), zap.Error(err))
		}
		return nil
	case SUJUntilExpired:
		return next(ctx)
	default:
		return &UnsupportedLockError{Type: l.typ, JID: job.JID}
	}
}

// OnDeath releases the lock of a job that died (retries exhausted, discarded, or dropped
// with retry: false), as the gem's death handler does, but only if the job holds it. Set
// it as sidekiq.Config.OnDeath, or call it from yours.
func (u *Unique) OnDeath(ctx context.Context, job *sidekiq.Job, _ error) {
	l, ok := sujLockOf(job)
	if !ok || l.typ == SUJUntilExpired {
		return
	}
	if _, err := u.unlock(ctx, l.digest, job.JID); err != nil {
		u.cfg.log.Warn("sidekiq-unique-jobs: unlock of a dead job failed",
			zap.String("jid", job.JID), zap.String("digest", l.digest), zap.Error(err))
	}
}

// Unlock releases digest (a lock_digest, "uniquejobs:<hash>", without Redis namespace) if
// jid holds it, as the gem's unlock.lua does, in one Lua call. It reports whether the lock
// was released.
func (u *Unique) Unlock(ctx context.Context, digest, jid string) (bool, error) {
	return u.unlock(ctx, digest, jid)
}

func (u *Unique) unlock(ctx context.Context, digest, jid string) (bool, error) {
	d := u.cfg.keyPrefix + digest
	keys := []string{d, d + ":QUEUED", d + ":PRIMED", d + ":LOCKED", d + ":INFO",
		u.cfg.keyPrefix + SUJChangelogKey, u.cfg.keyPrefix + SUJDigestsKey}
	n, err := sujUnlockScript.Run(ctx, u.rdb, keys, jid, nowSeconds(), u.cfg.maxHistory).Int()
	if err != nil {
		return false, fmt.Errorf("locks: sidekiq-unique-jobs unlock %s of job %s: %w", digest, jid, err)
	}
	if n == 0 {
		u.cfg.log.Debug("sidekiq-unique-jobs: lock not held by this job; left alone",
			zap.String("jid", jid), zap.String("digest", digest))
	}
	return n == 1, nil
}

func (u *Unique) relock(ctx context.Context, l sujLock, jid string) error {
	d := u.cfg.keyPrefix + l.digest
	keys := []string{d, d + ":LOCKED", u.cfg.keyPrefix + SUJChangelogKey, u.cfg.keyPrefix + SUJDigestsKey}
	return sujRelockScript.Run(ctx, u.rdb, keys, jid, nowSeconds(), l.ttl.Milliseconds(), u.cfg.maxHistory).Err()
}

func nowSeconds() string {
	return strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64)
}
