package locks

import "time"

// DefaultTTL is how long a queue lock is kept, beyond any schedule delay, when TTL is not
// given.
const DefaultTTL = time.Hour

// Conflict says what a push does when an identical job already holds the queue lock.
type Conflict uint8

const (
	// Drop makes the push a no-op: Push returns the holder's jid and a
	// *sidekiq.GuardHeldError, which matches sidekiq.ErrPushStopped. The default.
	Drop Conflict = iota
	// Error makes the push fail with a *LockedError, which matches ErrLocked and not
	// sidekiq.ErrPushStopped, for callers that must treat a duplicate as a failure.
	Error
	// Replace takes the lock over and pushes anyway. The earlier job stays queued and
	// still runs; it just no longer holds the lock (its release at start finds another
	// jid and leaves the key alone).
	Replace
)

// Option configures a QueueLock.
type Option func(*config)

type config struct {
	namespace string
	inputs    []string
	classes   map[string]bool
	ttl       time.Duration
	conflict  Conflict
	keyPrefix string
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
func TTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// OnConflict sets the conflict policy. Default: Drop.
func OnConflict(p Conflict) Option { return func(c *config) { c.conflict = p } }

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

func newConfig(opts []Option) config {
	c := config{ttl: DefaultTTL}
	for _, o := range opts {
		o(&c)
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	return c
}
