package sidekiq

import "github.com/ferryhq/ferry/internal/sidekeys"

// keyspace builds every Redis key Ferry touches: Sidekiq's layout (internal/sidekeys,
// shared with package api) and, below, the keys of Ferry's own.
type keyspace struct {
	sidekeys.Keys
}

func newKeyspace(namespace string) keyspace {
	return keyspace{sidekeys.New(namespace)}
}

// Ferry's own keys live under "ferry:" so they cannot collide with Sidekiq's or Sidekiq
// Pro's (which uses "queue:sq|..." for its private queues). No part of any key is taken
// from a job payload: queue keys come from Config.Queues or, for retries and scheduled
// jobs, from the payload's "queue" appended after the fixed "queue:" prefix, so a payload
// can name a queue but never a key outside the queue keyspace.

// inflight is the hash holding the jobs one process has taken (see scripts.go).
func (k keyspace) inflight(identity string) string { return k.Key("ferry:inflight:" + identity) }

// fence holds the lowest seq a fetch of the process may still use (see adoptLua).
func (k keyspace) fence(identity string) string { return k.Key("ferry:fence:" + identity) }

// inflightIndex names every Ferry process's in-flight hash (field: the hash's key, value:
// the owner's identity); recoverers read it.
func (k keyspace) inflightIndex() string { return k.Key("ferry:inflight") }

// legacyIndex is the index of the in-progress lists Ferry wrote before the in-flight
// hash (one list per process and queue); recoverers still empty the lists of processes
// that died before an upgrade.
func (k keyspace) legacyIndex() string { return k.Key("ferry:inprogress") }
