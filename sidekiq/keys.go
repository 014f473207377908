package sidekiq

import "time"

// keyspace builds every Redis key Ferry touches. With a namespace (redis-namespace, as
// Sidekiq 6 used it) keys get "ns:" in front; values stored in sets and lists (queue names,
// process identities) never do.
type keyspace struct {
	prefix string // "" or "ns:"
}

func newKeyspace(namespace string) keyspace {
	if namespace == "" {
		return keyspace{}
	}
	return keyspace{prefix: namespace + ":"}
}

// Key returns k with the namespace prefix.
func (k keyspace) key(s string) string { return k.prefix + s }

func (k keyspace) queues() string           { return k.prefix + "queues" }
func (k keyspace) queue(name string) string { return k.prefix + "queue:" + name }
func (k keyspace) schedule() string         { return k.prefix + "schedule" }
func (k keyspace) retry() string            { return k.prefix + "retry" }
func (k keyspace) dead() string             { return k.prefix + "dead" }
func (k keyspace) processes() string        { return k.prefix + "processes" }

// process is the heartbeat hash of one process.
func (k keyspace) process(identity string) string { return k.prefix + identity }

// work is the running-jobs hash Sidekiq 6.4.2+ reads; workers is the one 6.4.1 reads.
func (k keyspace) work(identity string) string    { return k.prefix + identity + ":work" }
func (k keyspace) workers(identity string) string { return k.prefix + identity + ":workers" }
func (k keyspace) signals(identity string) string { return k.prefix + identity + "-signals" }

func (k keyspace) statProcessed() string { return k.prefix + "stat:processed" }
func (k keyspace) statFailed() string    { return k.prefix + "stat:failed" }
func (k keyspace) statProcessedOn(day time.Time) string {
	return k.prefix + "stat:processed:" + day.UTC().Format("2006-01-02")
}
func (k keyspace) statFailedOn(day time.Time) string {
	return k.prefix + "stat:failed:" + day.UTC().Format("2006-01-02")
}

// Ferry's own keys live under "ferry:" so they cannot collide with Sidekiq's or Sidekiq
// Pro's (which uses "queue:sq|..." for its private queues). No part of any key is taken
// from a job payload: queue keys come from Config.Queues or, for retries and scheduled
// jobs, from the payload's "queue" appended after the fixed "queue:" prefix, so a payload
// can name a queue but never a key outside the queue keyspace.

// inflight is the hash holding the jobs one process has taken (see scripts.go).
func (k keyspace) inflight(identity string) string { return k.prefix + "ferry:inflight:" + identity }

// fence holds the lowest seq a fetch of the process may still use (see adoptLua).
func (k keyspace) fence(identity string) string { return k.prefix + "ferry:fence:" + identity }

// inflightIndex names every Ferry process's in-flight hash (field: the hash's key, value:
// the owner's identity); recoverers read it.
func (k keyspace) inflightIndex() string { return k.prefix + "ferry:inflight" }

// legacyIndex is the index of the in-progress lists Ferry wrote before the in-flight
// hash (one list per process and queue); recoverers still empty the lists of processes
// that died before an upgrade.
func (k keyspace) legacyIndex() string { return k.prefix + "ferry:inprogress" }
