package api

import "github.com/redis/go-redis/v9"

// The Lua scripts behind the actions. Each moves a batch of entries atomically per entry:
// an entry leaves its set only in the same step as it lands in its queue or in the dead
// set, so no crash or lost connection can drop a job between the two (Ruby's API removes
// first and pushes after, in two calls). Entries are named by their exact bytes, so an
// entry that someone else moved or changed in the meantime is left alone and reported as
// gone.

// requeueScript moves set entries to their queues.
//
//	KEYS[1]        the set
//	KEYS[2]        the queues set
//	KEYS[2+i]      queue:<q> of entry i
//	ARGV[3i-2]     entry i's member, as stored
//	ARGV[3i-1]     entry i's payload for the queue (retry_count and enqueued_at rewritten)
//	ARGV[3i]       entry i's queue name
//
// Returns the 1-based numbers of the entries moved.
var requeueScript = redis.NewScript(`
local moved = {}
for i = 1, #ARGV / 3 do
  if redis.call('ZREM', KEYS[1], ARGV[3 * i - 2]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[3 * i])
    redis.call('LPUSH', KEYS[2 + i], ARGV[3 * i - 1])
    moved[#moved + 1] = i
  end
end
return moved
`)

// killScript moves set entries, unchanged, into the dead set scored now, then trims the
// dead set as Sidekiq does after every kill.
//
//	KEYS[1]   the set
//	KEYS[2]   the dead set
//	ARGV[1]   now, float seconds
//	ARGV[2]   the oldest score kept (now - dead_timeout_in_seconds)
//	ARGV[3]   dead_max_jobs
//	ARGV[4..] the members to move
//
// Returns the 1-based numbers of the entries moved.
var killScript = redis.NewScript(`
local moved = {}
for i = 4, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
    moved[#moved + 1] = i - 3
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]))
return moved
`)
