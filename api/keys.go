package api

import "github.com/ferryhq/ferry/internal/sidekeys"

// keyspace names the Redis keys Sidekiq's API reads and writes: the same layout as the
// core's (internal/sidekeys), which the interop tests check against what Ruby writes.
type keyspace = sidekeys.Keys

func newKeyspace(namespace string) keyspace { return sidekeys.New(namespace) }
