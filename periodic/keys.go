package periodic

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// keyspace builds the keys this package touches: sidekiq-cron's (cron_jobs, cron_job:*)
// and Ferry's own under "ferry:cron:". A job name read from Redis only ever becomes the
// tail of a "cron_job:" key, so no name can reach a key outside sidekiq-cron's keyspace.
type keyspace struct{ prefix string }

func newKeyspace(namespace string) keyspace {
	if namespace == "" {
		return keyspace{}
	}
	return keyspace{prefix: namespace + ":"}
}

// jobMemberPrefix starts every member of the cron_jobs set: sidekiq-cron stores the job's
// key there (without namespace), not its name.
const jobMemberPrefix = "cron_job:"

// jobs is the set of every job's key.
func (k keyspace) jobs() string { return k.prefix + "cron_jobs" }

// job is a job's definition hash.
func (k keyspace) job(name string) string { return k.prefix + jobMemberPrefix + name }

// enqueued is the sorted set of ticks already enqueued (members: tickMember), the guard
// Ruby pollers and Ferry share.
func (k keyspace) enqueued(name string) string { return k.job(name) + ":enqueued" }

// history is the list of recent enqueues ({"jid","enqueued"} JSON), newest first.
func (k keyspace) history(name string) string { return k.job(name) + ":jid_history" }

// pending is Ferry's sorted set of claimed ticks whose push has not been confirmed,
// scored by claim time in milliseconds.
func (k keyspace) pending() string { return k.prefix + "ferry:cron:pending" }

// pushedGuard is the key (without namespace: the Client adds it) of the push guard that
// makes a tick's job pushed at most once, even when a recovering scheduler pushes a tick
// whose claimer was only slow. The name is hashed so that no name can make it ambiguous.
func pushedGuard(name string, tick time.Time) string {
	sum := sha256.Sum256([]byte(name))
	return "ferry:cron:pushed:" + hex.EncodeToString(sum[:16]) + ":" + strconv.FormatInt(tick.Unix(), 10)
}
