package locks

import "github.com/redis/go-redis/v9"

// Every Lua script of package locks. A lock key always holds the jid of the job that owns
// it, so each script compares before it changes anything: a job whose lock expired and was
// taken by another never extends or frees the other's lock. Each script touches one key,
// so they work on Redis Cluster too. Taking a queue lock is not here: it happens inside
// the push (sidekiq.PushGuard).

// releaseScript deletes a lock only while it still holds the caller's jid.
//
//	KEYS[1]  the lock key
//	ARGV[1]  jid
//
// Returns 1 if the key was deleted, 0 if it held another jid or did not exist.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)

// acquireScript takes a worker lock lease for a jid if nobody holds it.
//
//	KEYS[1]  the worker lock key
//	ARGV[1]  jid
//	ARGV[2]  lease in milliseconds
//
// Returns "" when the lease was taken, else the jid holding it. Not reentrant: a key that
// already holds this jid (a copy of the job still running somewhere, or a crashed run
// whose lease has not run out) is contention like any other.
var acquireScript = redis.NewScript(acquireSource)

const acquireSource = `
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return ""
end
return redis.call("GET", KEYS[1]) or ""
`

// renewScript extends a lease only while it still holds the caller's jid.
//
//	KEYS[1]  the worker lock key
//	ARGV[1]  jid
//	ARGV[2]  new time to live in milliseconds
//
// Returns 1 if the lease was extended, 0 if it was lost (expired or held by another jid).
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`)

// holdScript keeps a queue lock for a job that is rescheduled before it started: it sets
// the key to the jid with a new time to live when the key is free or already holds the
// jid, and leaves a key held by another job alone.
//
//	KEYS[1]  the queue lock key
//	ARGV[1]  jid
//	ARGV[2]  time to live in milliseconds
//
// Returns 1 if the key now holds the jid, 0 if another job holds it.
var holdScript = redis.NewScript(`
local cur = redis.call("GET", KEYS[1])
if cur and cur ~= ARGV[1] then
  return 0
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return 1
`)

// postponeScript adds a delay to the time to live of a queue lock the caller's jid holds,
// for a job rescheduled by a worker lock that runs before the queue lock's run side.
//
//	KEYS[1]  the queue lock key
//	ARGV[1]  jid
//	ARGV[2]  milliseconds to add
//
// Returns 1 if the key holds the jid and was extended, 0 otherwise (held by another job,
// free, or without a time to live).
var postponeScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = redis.call("PTTL", KEYS[1])
if ttl <= 0 then
  return 0
end
return redis.call("PEXPIRE", KEYS[1], ttl + tonumber(ARGV[2]))
`)
