package locks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
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

const (
	// DefaultSUJMaxHistory is how many changelog entries UniqueJobs keeps when writing one,
	// the gem's max_history default.
	DefaultSUJMaxHistory = 1000
	// DefaultSUJRunLease is the TTL of a runtime (:RUN) lock whose payload has no lock_ttl;
	// it is renewed while the job runs.
	DefaultSUJRunLease = 30 * time.Second
	// DefaultSUJContentionDelay is how long a job whose runtime lock is held waits before it
	// tries again, the delay of the gem's reschedule strategy.
	DefaultSUJContentionDelay = 5 * time.Second
)

// ErrUnsupportedLock is matched by the run error of a job whose sidekiq-unique-jobs lock
// type UniqueJobs does not know.
var ErrUnsupportedLock = errors.New("locks: sidekiq-unique-jobs lock type not supported by Ferry")

// ErrRunLockHeld is matched by the run error (a sidekiq.RetryIn) of a while_executing or
// until_and_while_executing job whose runtime lock another job holds.
var ErrRunLockHeld = errors.New("locks: sidekiq-unique-jobs runtime lock held by another job")

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
	prefixes   []string
	maxHistory int
	lease      time.Duration
	delay      time.Duration
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

// UniqueLockPrefix sets the gem's lock_prefix values (config.lock_prefix, and any
// lock_prefix a worker's sidekiq_options set) that payload digests may start with. A
// digest is honoured only as "<prefix>:<hex digest>" (see the package documentation);
// any other is treated as no lock. Default: DefaultSUJLockPrefix ("uniquejobs").
func UniqueLockPrefix(prefixes ...string) UniqueOption {
	return func(c *uniqueConfig) { c.prefixes = append([]string(nil), prefixes...) }
}

// UniqueMaxHistory sets how many entries of uniquejobs:changelog are kept when an unlock
// writes one (the gem's max_history); 0 or less writes none. Default: DefaultSUJMaxHistory.
func UniqueMaxHistory(n int) UniqueOption { return func(c *uniqueConfig) { c.maxHistory = n } }

// UniqueRunLease sets the TTL of runtime (:RUN) locks whose payload has no lock_ttl. The
// lock is renewed every third of its TTL while the handler runs, so it only expires when
// the process dies. Default: DefaultSUJRunLease.
func UniqueRunLease(d time.Duration) UniqueOption { return func(c *uniqueConfig) { c.lease = d } }

// UniqueContentionDelay sets how long a job whose runtime lock is held is rescheduled for
// (sidekiq.RetryIn: no retry is used up). Default: DefaultSUJContentionDelay.
func UniqueContentionDelay(d time.Duration) UniqueOption {
	return func(c *uniqueConfig) { c.delay = d }
}

// UniqueLogger sets the logger for locks found held by another job, and for payloads whose
// digest is outside the gem's keyspace (once per reason, not per job). Default: no
// logging.
func UniqueLogger(l *zap.Logger) UniqueOption { return func(c *uniqueConfig) { c.log = l } }

// Unique is server middleware that releases sidekiq-unique-jobs locks of jobs pushed by
// Ruby with that gem. Make it with UniqueJobs.
type Unique struct {
	sidekiq.MiddlewareDefaults
	rdb     redis.UniversalClient
	cfg     uniqueConfig
	refused logcap.Once // reasons a payload's digest was refused, logged once each
}

// UniqueJobs returns server middleware for jobs locked by sidekiq-unique-jobs v8 (see the
// package documentation, "sidekiq-unique-jobs"). Install it with Server.Use and, so that a
// job that dies releases its lock as the gem's death handler does, set Config.OnDeath to
// its OnDeath method.
func UniqueJobs(rdb redis.UniversalClient, opts ...UniqueOption) *Unique {
	c := uniqueConfig{maxHistory: DefaultSUJMaxHistory, lease: DefaultSUJRunLease, delay: DefaultSUJContentionDelay}
	for _, o := range opts {
		o(&c)
	}
	if c.lease <= 0 {
		c.lease = DefaultSUJRunLease
	}
	if c.delay <= 0 {
		c.delay = DefaultSUJContentionDelay
	}
	if c.maxHistory < 0 {
		c.maxHistory = 0
	}
	var prefixes []string
	for _, p := range c.prefixes {
		if p != "" {
			prefixes = append(prefixes, p)
		}
	}
	if len(prefixes) == 0 {
		prefixes = []string{DefaultSUJLockPrefix}
	}
	c.prefixes = prefixes
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

// maxSUJTTL bounds a payload's lock_ttl, so that no value overflows a time.Duration.
const maxSUJTTL = 10 * 365 * 24 * time.Hour

// lockOf reads the lock fields of job; ok is false when the job has no usable lock (no
// "lock" type, or no digest). Fields of the wrong JSON type count as absent: a malformed
// payload runs as an unlocked one. So does a digest outside the gem's keyspace
// (validDigest), which is logged once per field, never per job.
func (u *Unique) lockOf(job *sidekiq.Job) (l sujLock, ok bool) {
	if found, err := job.Get("lock", &l.typ); !found || err != nil || l.typ == "" {
		return l, false
	}
	field := ""
	for _, k := range []string{"lock_digest", "unique_digest"} {
		if found, err := job.Get(k, &l.digest); found && err == nil && l.digest != "" {
			field = k
			break
		}
		l.digest = ""
	}
	if l.digest == "" {
		return l, false
	}
	if !validDigest(l.digest, u.cfg.prefixes) {
		if reason := field + " outside the sidekiq-unique-jobs keyspace"; u.refused.First(reason) {
			u.cfg.log.Warn("sidekiq-unique-jobs: "+reason+"; the job runs unlocked (logged once, not per job)",
				logcap.String("jid", job.JID), logcap.String("class", job.Class), logcap.String("digest", l.digest),
				zap.Strings("accepted", u.digestForms()))
		}
		return l, false
	}
	for _, k := range []string{"lock_ttl", "lock_expiration"} {
		var secs float64
		if found, err := job.Get(k, &secs); found && err == nil && secs > 0 {
			l.ttl = maxSUJTTL
			if secs < maxSUJTTL.Seconds() {
				l.ttl = time.Duration(secs * float64(time.Second))
			}
			break
		}
	}
	return l, true
}

// digestForms describes the digests accepted, for the log.
func (u *Unique) digestForms() []string {
	out := make([]string, len(u.cfg.prefixes))
	for i, p := range u.cfg.prefixes {
		out[i] = p + ":<32 or 64 lowercase hex digits>[:RUN]"
	}
	return out
}

// InterceptRun applies the job's lock at the point the gem would (see the package
// documentation): release before the handler for until_executing, after a successful
// handler for until_executed, never for until_expired, and a runtime lock around the
// handler for while_executing and until_and_while_executing. A lock held by another jid is
// never touched, and a job runs even when it does not hold its lock (the gem would skip
// it). A job whose runtime lock is held is rescheduled (sidekiq.RetryIn, matching
// ErrRunLockHeld), never dropped. A job with an unknown lock type is not run: it fails
// with an *UnsupportedLockError and goes to the retry set.
func (u *Unique) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	l, ok := u.lockOf(job)
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
			u.relock(ctx, l, job.JID)
		}
		return err
	case SUJUntilExecuted:
		if err := next(ctx); err != nil {
			return err
		}
		u.unlockAfterRun(ctx, l.digest, job.JID)
		return nil
	case SUJUntilExpired:
		return next(ctx)
	case SUJWhileExecuting:
		return u.whileExecuting(ctx, job, l, next)
	case SUJUntilAndWhileExecuting:
		if _, err := u.unlock(ctx, l.digest, job.JID); err != nil {
			return err
		}
		err := u.whileExecuting(ctx, job, l, next)
		if err != nil {
			// A failed or rescheduled run keeps its place: identical pushes still collapse.
			u.relock(ctx, l, job.JID)
		}
		return err
	default:
		return &UnsupportedLockError{Type: l.typ, JID: job.JID}
	}
}

// whileExecuting runs next holding the runtime lock "<digest>:RUN", renewed while it runs
// and released afterwards whatever the outcome (the gem releases it in an ensure).
func (u *Unique) whileExecuting(ctx context.Context, job *sidekiq.Job, l sujLock, next func(context.Context) error) error {
	run := l.digest
	if !strings.HasSuffix(run, sujRunSuffix) {
		run += sujRunSuffix
	}
	ttl := l.ttl
	if ttl <= 0 {
		ttl = u.cfg.lease
	}
	held, err := u.lock(ctx, run, job.JID, ttl)
	if err != nil {
		return err
	}
	if !held {
		return sidekiq.RetryIn(u.cfg.delay, fmt.Errorf("job %s, lock %s: %w", job.JID, run, ErrRunLockHeld))
	}
	stop := u.renew(ctx, run, job.JID, ttl)
	err = next(ctx)
	stop()
	u.unlockAfterRun(ctx, run, job.JID)
	return err
}

// renew refreshes a held lock's TTL every third of it until the returned stop is called
// (which waits for the renewer to finish).
func (u *Unique) renew(ctx context.Context, digest, jid string, ttl time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(ttl/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				held, err := u.lock(ctx, digest, jid, ttl)
				if err != nil && ctx.Err() == nil {
					u.cfg.log.Warn("sidekiq-unique-jobs: renewing the runtime lock failed",
						logcap.String("jid", jid), logcap.String("digest", digest), logcap.Error(err))
				} else if err == nil && !held {
					u.cfg.log.Warn("sidekiq-unique-jobs: runtime lock lost while the job runs",
						logcap.String("jid", jid), logcap.String("digest", digest))
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// OnDeath releases the lock of a job that died (retries exhausted, discarded, or dropped
// with retry: false), as the gem's death handler does, but only if the job holds it. Set
// it as sidekiq.Config.OnDeath, or call it from yours.
func (u *Unique) OnDeath(ctx context.Context, job *sidekiq.Job, _ error) {
	l, ok := u.lockOf(job)
	if !ok || l.typ == SUJUntilExpired {
		return
	}
	if _, err := u.unlock(ctx, l.digest, job.JID); err != nil {
		u.cfg.log.Warn("sidekiq-unique-jobs: unlock of a dead job failed",
			logcap.String("jid", job.JID), logcap.String("digest", l.digest), logcap.Error(err))
	}
}

// Unlock releases digest (a lock_digest, "uniquejobs:<hash>", without Redis namespace) if
// jid holds it, as the gem's unlock.lua does, in one Lua call. It reports whether the lock
// was released. A digest outside the gem's keyspace (see the package documentation) is
// refused with an error matching ErrInvalidDigest, touching nothing.
func (u *Unique) Unlock(ctx context.Context, digest, jid string) (bool, error) {
	return u.unlock(ctx, digest, jid)
}

func (u *Unique) unlock(ctx context.Context, digest, jid string) (bool, error) {
	if !validDigest(digest, u.cfg.prefixes) {
		return false, fmt.Errorf("locks: sidekiq-unique-jobs unlock %s of job %s: %w", logcap.Cut(digest, logcap.Max), logcap.Cut(jid, logcap.Max), ErrInvalidDigest)
	}
	d := u.cfg.keyPrefix + digest
	keys := []string{d, d + ":QUEUED", d + ":PRIMED", d + ":LOCKED", d + ":INFO",
		u.cfg.keyPrefix + SUJChangelogKey, u.cfg.keyPrefix + SUJDigestsKey}
	n, err := sujUnlockScript.Run(ctx, u.rdb, keys, jid, nowSeconds(), u.cfg.maxHistory).Int()
	if err != nil {
		return false, fmt.Errorf("locks: sidekiq-unique-jobs unlock %s of job %s: %w", digest, jid, err)
	}
	if n == 0 {
		u.cfg.log.Debug("sidekiq-unique-jobs: lock not held by this job; left alone",
			logcap.String("jid", jid), logcap.String("digest", digest))
	}
	return n == 1, nil
}

// lock takes digest for jid if nobody holds it (refreshing its TTL if jid does).
func (u *Unique) lock(ctx context.Context, digest, jid string, ttl time.Duration) (bool, error) {
	if !validDigest(digest, u.cfg.prefixes) {
		return false, fmt.Errorf("locks: sidekiq-unique-jobs lock %s for job %s: %w", logcap.Cut(digest, logcap.Max), logcap.Cut(jid, logcap.Max), ErrInvalidDigest)
	}
	d := u.cfg.keyPrefix + digest
	keys := []string{d, d + ":LOCKED", u.cfg.keyPrefix + SUJChangelogKey, u.cfg.keyPrefix + SUJDigestsKey}
	n, err := sujLockScript.Run(ctx, u.rdb, keys, jid, nowSeconds(), ttl.Milliseconds(), u.cfg.maxHistory).Int()
	if err != nil {
		return false, fmt.Errorf("locks: sidekiq-unique-jobs lock %s for job %s: %w", digest, jid, err)
	}
	return n == 1, nil
}

// relock takes a job's client lock back after a failed or rescheduled run, as the gem does,
// so its retry stays unique. A failure is logged: the run's own error is what matters.
func (u *Unique) relock(ctx context.Context, l sujLock, jid string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterRunTimeout)
	defer cancel()
	if _, err := u.lock(ctx, l.digest, jid, l.ttl); err != nil {
		u.cfg.log.Warn("sidekiq-unique-jobs: could not take the lock back after a failed run",
			logcap.String("jid", jid), logcap.String("digest", l.digest), logcap.Error(err))
	}
}

// unlockAfterRun releases a lock once the handler has run, even if ctx was cancelled
// meanwhile (a shutdown). Failing the job now would run it again, so an error is logged and
// the lock stays until its TTL, the gem's reaper, or a manual delete.
func (u *Unique) unlockAfterRun(ctx context.Context, digest, jid string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterRunTimeout)
	defer cancel()
	if _, err := u.unlock(ctx, digest, jid); err != nil {
		u.cfg.log.Error("sidekiq-unique-jobs: unlock after the run failed",
			logcap.String("jid", jid), logcap.String("digest", digest), logcap.Error(err))
	}
}

// afterRunTimeout bounds the Redis calls made after a handler returned.
const afterRunTimeout = 5 * time.Second

// sujRunSuffix ends the digest of a runtime lock.
const sujRunSuffix = ":RUN"

func nowSeconds() string {
	return strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64)
}
