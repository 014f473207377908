package locks

import "github.com/redis/go-redis/v9"

// Lua for sidekiq-unique-jobs (v8) locks. Written for Ferry from the gem's documented key
// layout (reference/semantics.md §2.4): for a lock digest D (the payload's lock_digest,
// "uniquejobs:<hash>"), D holds the holder's jid, D:LOCKED is a hash jid → lock time,
// D:QUEUED and D:PRIMED are the waiting lists of the gem's blocking path, D:INFO holds
// metadata, uniquejobs:digests lists held digests and uniquejobs:changelog keeps history.

// sujUnlockScript releases digest D for one jid, only if that jid holds it (HEXISTS on
// D:LOCKED), as the gem's unlock.lua does for every lock type except until_expired.
//
//	KEYS[1] D   KEYS[2] D:QUEUED   KEYS[3] D:PRIMED   KEYS[4] D:LOCKED   KEYS[5] D:INFO
//	KEYS[6] uniquejobs:changelog   KEYS[7] uniquejobs:digests
//	ARGV[1] jid   ARGV[2] now (epoch seconds)   ARGV[3] changelog entries to keep (0 = none)
//
// Returns 1 when released, 0 when the jid did not hold the lock (nothing is touched).
// After releasing, a "1" is pushed onto D:QUEUED for 5 s to wake clients of the gem that
// wait for the lock (lock_timeout > 0), as the gem does.
var sujUnlockScript = redis.NewScript(`
local jid = ARGV[1]
if redis.call("HEXISTS", KEYS[4], jid) == 0 then
  return 0
end
redis.call("HDEL", KEYS[4], jid)
redis.call("LREM", KEYS[2], -1, jid)
redis.call("LREM", KEYS[3], -1, jid)
redis.call("UNLINK", KEYS[1], KEYS[5])
if redis.call("HLEN", KEYS[4]) == 0 then
  redis.call("UNLINK", KEYS[4], KEYS[3])
  redis.call("ZREM", KEYS[7], KEYS[1])
end
redis.call("LPUSH", KEYS[2], "1")
redis.call("PEXPIRE", KEYS[2], 5000)
local keep = tonumber(ARGV[3])
if keep > 0 then
  local now = tonumber(ARGV[2])
  local entry = cjson.encode({digest = KEYS[1], job_id = jid, script = "unlock.lua", message = "Unlocked", time = now})
  redis.call("ZADD", KEYS[6], now, entry)
  redis.call("ZREMRANGEBYRANK", KEYS[6], 0, -(keep + 1))
end
return 1
`)

// sujLockScript takes digest D for a jid when nobody holds it, the way the gem's
// queue_and_lock.lua does for a single lock (lock_limit 1): used to take an
// until_executing lock back after a failed run (so the retry stays unique) and to take a
// runtime (:RUN) lock. A lock held by any other jid is left alone; one held by this jid
// has its TTL refreshed.
//
//	KEYS[1] D   KEYS[2] D:LOCKED   KEYS[3] uniquejobs:changelog   KEYS[4] uniquejobs:digests
//	ARGV[1] jid   ARGV[2] now (epoch seconds)   ARGV[3] TTL in ms (0 = none)
//	ARGV[4] changelog entries to keep (0 = none)
//
// Returns 1 when the jid holds the lock afterwards, 0 when another jid does.
var sujLockScript = redis.NewScript(`
local jid = ARGV[1]
local pttl = tonumber(ARGV[3])
if redis.call("HLEN", KEYS[2]) > 0 then
  if redis.call("HEXISTS", KEYS[2], jid) == 0 then
    return 0
  end
else
  local now = tonumber(ARGV[2])
  redis.call("SET", KEYS[1], jid)
  redis.call("HSET", KEYS[2], jid, ARGV[2])
  redis.call("ZADD", KEYS[4], now, KEYS[1])
  local keep = tonumber(ARGV[4])
  if keep > 0 then
    local entry = cjson.encode({digest = KEYS[1], job_id = jid, script = "lock.lua", message = "Locked", time = now})
    redis.call("ZADD", KEYS[3], now, entry)
    redis.call("ZREMRANGEBYRANK", KEYS[3], 0, -(keep + 1))
  end
end
if pttl > 0 then
  redis.call("PEXPIRE", KEYS[1], pttl)
  redis.call("PEXPIRE", KEYS[2], pttl)
end
return 1
`)
