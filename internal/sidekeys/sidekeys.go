// Package sidekeys names the Redis keys Sidekiq reads and writes, the one layout the core
// (package sidekiq) and the Web-UI-style API (package api) share.
//
// With a namespace (redis-namespace, as Sidekiq 6 used it) every key gets "ns:" in front;
// values stored in sets and lists (queue names, process identities) never do. A name that
// comes from a payload (a queue) is only ever appended after a fixed prefix such as
// "queue:", so it can name a queue but never a key outside the queue keyspace.
package sidekeys

import "time"

// Keys builds Sidekiq's keys under one namespace. The zero value is the layout without a
// namespace.
type Keys struct {
	prefix string // "" or "ns:"
}

// New returns the layout under namespace ("" for none).
func New(namespace string) Keys {
	if namespace == "" {
		return Keys{}
	}
	return Keys{prefix: namespace + ":"}
}

// Key returns s with the namespace prefix.
func (k Keys) Key(s string) string { return k.prefix + s }

// Queues is the set of every queue name Sidekiq has seen.
func (k Keys) Queues() string { return k.prefix + "queues" }

// Queue is the list of a queue's waiting jobs.
func (k Keys) Queue(name string) string { return k.prefix + "queue:" + name }

// Paused is the set of paused queues (Sidekiq Pro and Ferry's API).
func (k Keys) Paused() string { return k.prefix + "paused" }

// Schedule is the sorted set of scheduled jobs.
func (k Keys) Schedule() string { return k.prefix + "schedule" }

// Retry is the sorted set of jobs waiting to be retried.
func (k Keys) Retry() string { return k.prefix + "retry" }

// Dead is the sorted set of dead jobs (the morgue).
func (k Keys) Dead() string { return k.prefix + "dead" }

// Set is one of the sorted sets above by its Sidekiq name ("schedule", "retry", "dead").
func (k Keys) Set(name string) string { return k.prefix + name }

// Processes is the set of live process identities.
func (k Keys) Processes() string { return k.prefix + "processes" }

// ProcessCleanup is the lock Sidekiq's API takes while it prunes dead processes.
func (k Keys) ProcessCleanup() string { return k.prefix + "process_cleanup" }

// Process is the heartbeat hash of one process.
func (k Keys) Process(identity string) string { return k.prefix + identity }

// Work is the running-jobs hash Sidekiq 6.4.2 and later read.
func (k Keys) Work(identity string) string { return k.prefix + identity + ":work" }

// Workers is the running-jobs hash Sidekiq 6.4.1 reads. Ferry writes both.
func (k Keys) Workers(identity string) string { return k.prefix + identity + ":workers" }

// Signals is the list of signals (quiet, stop) sent to one process.
func (k Keys) Signals(identity string) string { return k.prefix + identity + "-signals" }

// Stat is a statistics counter ("processed", "failed").
func (k Keys) Stat(name string) string { return k.prefix + "stat:" + name }

// StatOn is a statistics counter's key for one UTC day.
func (k Keys) StatOn(name string, day time.Time) string {
	return k.prefix + "stat:" + name + ":" + day.UTC().Format("2006-01-02")
}
