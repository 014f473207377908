package api

import "time"

// keyspace names the Redis keys Sidekiq's API reads and writes. With a namespace
// (redis-namespace, as Sidekiq 6 used it) every key gets "ns:" in front; values stored in
// sets and lists (queue names, process identities) never do.
//
// The core keeps its own copy of this layout (sidekiq/keys.go, unexported); the two must
// agree, which the interop tests check against what Ruby writes.
type keyspace struct {
	prefix string // "" or "ns:"
}

func newKeyspace(namespace string) keyspace {
	if namespace == "" {
		return keyspace{}
	}
	return keyspace{prefix: namespace + ":"}
}

func (k keyspace) queues() string           { return k.prefix + "queues" }
func (k keyspace) queue(name string) string { return k.prefix + "queue:" + name }
func (k keyspace) paused() string           { return k.prefix + "paused" }
func (k keyspace) set(name string) string   { return k.prefix + name }
func (k keyspace) dead() string             { return k.prefix + "dead" }
func (k keyspace) processes() string        { return k.prefix + "processes" }
func (k keyspace) processCleanup() string   { return k.prefix + "process_cleanup" }

// process is the heartbeat hash of one process.
func (k keyspace) process(identity string) string { return k.prefix + identity }

// work is the running-jobs hash Sidekiq 6.4.2 and later write; workers is the one 6.4.1
// writes. Ferry writes both.
func (k keyspace) work(identity string) string    { return k.prefix + identity + ":work" }
func (k keyspace) workers(identity string) string { return k.prefix + identity + ":workers" }
func (k keyspace) signals(identity string) string { return k.prefix + identity + "-signals" }

func (k keyspace) stat(name string) string { return k.prefix + "stat:" + name }
func (k keyspace) statOn(name string, day time.Time) string {
	return k.prefix + "stat:" + name + ":" + day.UTC().Format("2006-01-02")
}
