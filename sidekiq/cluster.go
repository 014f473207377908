package sidekiq

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrClusterNamespace is matched by the error of Client pushes and Server.Start when rdb
// shards keys (a *redis.ClusterClient, or a *redis.Ring) and the Namespace is not a hash
// tag. See the package documentation, "Redis Cluster".
var ErrClusterNamespace = errors.New("sidekiq: a sharded Redis client needs a Namespace that is a hash tag, such as \"{ferry}\"")

// checkCluster returns an error matching ErrClusterNamespace when rdb spreads keys over
// several servers by hash slot (Redis Cluster) or by hash (a client-side Ring) and
// namespace does not pin every key to one slot. Ferry's Lua scripts and MULTI/EXEC blocks
// touch several keys at once (a queue and the in-progress list, the retry set and the
// queue, a job and its guard); a cluster refuses that across slots (CROSSSLOT), and a Ring
// would run the script on one shard with keys that belong to another. With a namespace
// that is a hash tag every key is "<namespace>:...", hashed on the tag alone, so all of
// them live in one slot, on one node.
func checkCluster(rdb redis.UniversalClient, namespace string) error {
	var kind string
	switch rdb.(type) {
	case *redis.ClusterClient:
		kind = "Redis Cluster"
	case *redis.Ring:
		kind = "a Redis Ring"
	default:
		return nil
	}
	if isHashTag(namespace) {
		return nil
	}
	return fmt.Errorf("%w: with %s, Ferry's scripts and transactions touch several keys at once, "+
		"which only works when they share a hash slot; namespace %q has no hash tag, so its keys spread over "+
		"slots. Use a namespace like \"{ferry}\" (the same in the Ruby processes' redis-namespace, if any), "+
		"or a non-cluster Redis: Ruby Sidekiq does not support Redis Cluster at all", ErrClusterNamespace, kind, namespace)
}

// isHashTag reports whether every key "<namespace>:..." hashes on a tag inside namespace:
// Redis hashes a key on what lies between its first '{' and the first '}' after it, when
// that is not empty. The tag must close inside the namespace, or the rest of each key
// would decide its slot.
func isHashTag(namespace string) bool {
	open := strings.IndexByte(namespace, '{')
	if open < 0 {
		return false
	}
	return strings.IndexByte(namespace[open+1:], '}') > 0
}
