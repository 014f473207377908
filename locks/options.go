package locks

import (
	"time"

	"go.uber.org/zap"
)

// DefaultTTL is how long a queue lock is kept, beyond any schedule delay, when TTL is not
// given.
const DefaultTTL = time.Hour

// Conflict says what a push does when an identical job already holds the queue lock.
type Conflict uint8

const (
	// Drop makes the push a no-op: Push returns the holder's jid and a
	// *sidekiq.PushStoppedError, which matches sidekiq.ErrPushStopped. The default.
	Drop Conflict = iota
	// Error makes the push fail with a *QueueLockedError, which matches ErrQueueLocked and not
	// sidekiq.ErrPushStopped, for callers that must treat a duplicate as a failure.
	Error
	// Replace takes the lock over and pushes anyway. The earlier job stays queued and
	// still runs; it just no longer holds the lock (its release at start finds another
	// jid and leaves the key alone).
	Replace
)

// Option configures either lock kind: Namespace, Inputs, Classes, RedisNamespace, Logger.
// Options that concern one kind only have their own types, so that passing one to the
// other kind does not compile: TTL and OnConflict are QueueOptions, Lease and Backoff
// WorkerOptions.
type Option func(*config)

func (o Option) applyQueue(c *config)  { o(c) }
func (o Option) applyWorker(c *config) { o(c) }

// QueueOption configures a QueueLock: an Option, TTL or OnConflict.
type QueueOption interface{ applyQueue(*config) }

// WorkerOption configures a WorkerLock: an Option, Lease or Backoff.
type WorkerOption interface{ applyWorker(*config) }

type queueOnly func(*config)

func (f queueOnly) applyQueue(c *config) { f(c) }

type workerOnly func(*config)

func (f workerOnly) applyWorker(c *config) { f(c) }

type config struct {
	namespace string
	inputs    []string
	classes   map[string]bool
	ttl       time.Duration
	conflict  Conflict
	keyPrefix string

	lease       time.Duration
	backoffBase time.Duration
	backoffCap  time.Duration
	logger      *zap.Logger
}

// Namespace sets the lock namespace, which is hashed into the key. Default: the job's
// class, so only jobs of one class collapse; give several classes the same namespace (and
// the same Inputs) to let them share one lock.
func Namespace(name string) Option { return func(c *config) { c.namespace = name } }

// Inputs chooses the input names (keys of args[0]) that make up the lock key. Default:
// every input except locale and tz.
func Inputs(names ...string) Option {
	return func(c *config) { c.inputs = append([]string(nil), names...) }
}

// Classes limits the lock to jobs of these classes; other jobs are pushed and run as if
// it were not installed. Default: every job pushed or run through the middleware.
func Classes(names ...string) Option {
	return func(c *config) {
		c.classes = make(map[string]bool, len(names))
		for _, n := range names {
			c.classes[n] = true
		}
	}
}

// TTL sets how long the lock is kept after the job is due; a scheduled push adds its
// delay (sidekiq.PushDelay). It bounds how long a job lost from its queue blocks
// identical pushes. Default: DefaultTTL.
func TTL(d time.Duration) QueueOption { return queueOnly(func(c *config) { c.ttl = d }) }

// OnConflict sets the conflict policy. Default: Drop.
func OnConflict(p Conflict) QueueOption { return queueOnly(func(c *config) { c.conflict = p }) }

// RedisNamespace must equal the Namespace of the sidekiq.ClientConfig and sidekiq.Config
// the lock is installed in (redis-namespace): the run side releases "<ns>:<key>" as the
// Client set it. Default: none.
func RedisNamespace(ns string) Option {
	return func(c *config) {
		c.keyPrefix = ""
		if ns != "" {
			c.keyPrefix = ns + ":"
		}
	}
}

const (
	// DefaultLease is a worker lock's lease when Lease is not given.
	DefaultLease = 30 * time.Second
	// DefaultBackoffBase is the delay before a contended job's first new attempt, when
	// Backoff is not given.
	DefaultBackoffBase = time.Second
	// DefaultBackoffCap is the longest delay between a contended job's attempts, when
	// Backoff is not given.
	DefaultBackoffCap = time.Minute
)

// Lease sets how long a worker lock lives without renewal: the holder renews it every
// third of the lease while its handler runs, and a crashed holder's lock is free at most
// one lease after its last renewal. Default: DefaultLease.
func Lease(d time.Duration) WorkerOption { return workerOnly(func(c *config) { c.lease = d }) }

// Backoff sets how long a job that found its worker lock held waits before its next
// attempt: base·2^(n-1) after its n-th consecutive contention, at most maxDelay, of which
// a random part up to half is taken off (jitter), so waiting jobs spread out. Defaults:
// DefaultBackoffBase and DefaultBackoffCap.
func Backoff(base, maxDelay time.Duration) WorkerOption {
	return workerOnly(func(c *config) { c.backoffBase, c.backoffCap = base, maxDelay })
}

// Logger sets the logger for events that do not fail a job: a worker lock lease lost while
// its handler runs, a lock that could not be released or kept. Default: no logging.
func Logger(l *zap.Logger) Option { return func(c *config) { c.logger = l } }

func newQueueConfig(opts []QueueOption) config {
	c := config{ttl: DefaultTTL}
	for _, o := range opts {
		o.applyQueue(&c)
	}
	return c.withDefaults()
}

func newWorkerConfig(opts []WorkerOption) config {
	c := config{ttl: DefaultTTL}
	for _, o := range opts {
		o.applyWorker(&c)
	}
	return c.withDefaults()
}

func (c config) withDefaults() config {
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.lease <= 0 {
		c.lease = DefaultLease
	}
	if c.lease < 3*time.Millisecond {
		c.lease = 3 * time.Millisecond // renewal runs every lease/3
	}
	if c.backoffBase <= 0 {
		c.backoffBase = DefaultBackoffBase
	}
	if c.backoffCap <= 0 {
		c.backoffCap = DefaultBackoffCap
	}
	if c.backoffCap < c.backoffBase {
		c.backoffCap = c.backoffBase
	}
	if c.logger == nil {
		c.logger = zap.NewNop()
	}
	return c
}
