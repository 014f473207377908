package sidekiq

import "github.com/redis/go-redis/v9"

// Every Lua script Ferry's core runs. Each runs atomically in Redis; go-redis sends EVALSHA
// and falls back to EVAL when the script is not cached (after a Redis restart, say).

// fetchScript moves up to ARGV[1] jobs from queues into this process's in-progress lists,
// in one atomic step: a job is always in exactly one list, never only in memory. A list
// that receives jobs is (re)registered in the in-progress index in the same step, so a
// recoverer that dropped it (this process's heartbeat came late) finds it again if the
// process then dies before its next heartbeat. Needs Redis 6.2 or later (RPOP with a count).
//
//	KEYS[1..n]       queue:<q> for each queue, in the order to try
//	KEYS[n+1..2n]    the in-progress list of each of those queues
//	KEYS[2n+1]       the in-progress index hash
//	ARGV[1]          how many jobs to take at most (at most a few thousand)
//	ARGV[2..n+1]     how many more jobs each queue may give (-1 = no cap)
//	ARGV[n+2..2n+1]  the index value (owner) of each in-progress list
//	ARGV[2n+2..]     optional, weighted mode: for each job slot, the queue (1-based) drawn
//	               for it; each queue first gets the slots drawn for it, and slots left
//	               over (a queue ran dry) go to the queues in KEYS order
//
// Returns a flat array: queue index (1-based), payload, queue index, payload, ...
// Jobs are taken from the tail (Sidekiq pushes with LPUSH and pops with BRPOP), oldest
// first, and pushed onto the head of the in-progress list.
var fetchScript = redis.NewScript(`
local n = (#KEYS - 1) / 2
local want = tonumber(ARGV[1])
local allow = {}
for i = 1, n do allow[i] = tonumber(ARGV[1 + i]) end
local out = {}
local function take(i, k)
  if k <= 0 or allow[i] == 0 then return 0 end
  if allow[i] > 0 and k > allow[i] then k = allow[i] end
  local jobs = redis.call('RPOP', KEYS[i], k)
  if not jobs then
    allow[i] = 0
    return 0
  end
  redis.call('LPUSH', KEYS[n + i], unpack(jobs))
  redis.call('HSET', KEYS[2 * n + 1], KEYS[n + i], ARGV[n + 1 + i])
  if #jobs < k then
    allow[i] = 0
  elseif allow[i] > 0 then
    allow[i] = allow[i] - #jobs
  end
  for _, job in ipairs(jobs) do
    out[#out + 1] = i
    out[#out + 1] = job
  end
  return #jobs
end
local left = want
if #ARGV > 1 + 2 * n then
  local quota = {}
  for s = 2 * n + 2, #ARGV do
    local q = tonumber(ARGV[s])
    quota[q] = (quota[q] or 0) + 1
  end
  for i = 1, n do
    if quota[i] then left = left - take(i, quota[i]) end
  end
end
for i = 1, n do
  if left <= 0 then break end
  left = left - take(i, left)
end
return out
`)

// ackScript removes finished jobs from the in-progress lists, many per call.
//
//	KEYS[1..n]  in-progress lists
//	ARGV        pairs: list index (1-based), the job's exact bytes
//
// Returns how many were removed.
var ackScript = redis.NewScript(`
local removed = 0
for i = 1, #ARGV, 2 do
  removed = removed + redis.call('LREM', KEYS[tonumber(ARGV[i])], 1, ARGV[i + 1])
end
return removed
`)

// requeueScript returns every job of one in-progress list to the head of its queue (the end
// the next fetch takes from), oldest first, and deletes the list. With a liveness key it
// does nothing while that key exists, so a live process's jobs are never taken; because
// the list is emptied in the same step, a job is returned once however many processes run
// the script.
//
//	KEYS[1]  the in-progress list
//	KEYS[2]  queue:<q>
//	KEYS[3]  the in-progress index hash
//	KEYS[4]  optional: the owner's process hash; if it exists, nothing happens
//	ARGV[1]  the field of KEYS[1] in the index
//
// Returns the number of jobs returned, or -1 when the owner is alive.
var requeueScript = redis.NewScript(`
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local jobs = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #jobs do
  redis.call('RPUSH', KEYS[2], jobs[i])
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return #jobs
`)

// requeueOneScript returns one job that this process holds to the head of its queue: used
// for jobs fetched after a quiet or stop began, and for jobs whose run was abandoned.
//
//	KEYS[1]  the in-progress list
//	KEYS[2]  queue:<q>
//	ARGV[1]  the job's exact bytes
//
// Returns 1 if the job was in the list (and is now back in its queue), 0 otherwise.
var requeueOneScript = redis.NewScript(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
`)

// promoteScript moves due jobs from the schedule or retry set onto their queues. The Go
// side has already rewritten each payload (enqueued_at set, "at" removed); the ZREM guard
// makes sure a member is moved by one process only, once.
//
//	KEYS[1]    the sorted set (schedule or retry)
//	KEYS[2]    the queues set
//	KEYS[3]    the dead set
//	KEYS[4..]  queue:<q> for each destination queue
//	ARGV       groups of four: original member, new payload, destination, name.
//	           destination k > 0 pushes onto KEYS[3 + k] and adds name to the queues set;
//	           destination 0 buries the new payload in the dead set, with name as its score
//	           (for members that are not runnable jobs).
//
// Returns how many members this call moved.
var promoteScript = redis.NewScript(`
local moved = 0
for i = 1, #ARGV, 4 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local k = tonumber(ARGV[i + 2])
    if k == 0 then
      redis.call('ZADD', KEYS[3], ARGV[i + 3], ARGV[i + 1])
    else
      redis.call('SADD', KEYS[2], ARGV[i + 3])
      redis.call('LPUSH', KEYS[3 + k], ARGV[i + 1])
    end
    moved = moved + 1
  end
end
return moved
`)

// GuardedPushLua is the text of the Lua script behind every guarded push (PushGuard). It
// is exported so that other producers can run the very same script: the Ruby client
// middleware in locks/ruby carries a byte-identical copy (a test in package locks checks
// it), so a lock taken from Rails and one taken from Go are the same key, set the same way.
// It pushes one job unless one of its guard keys is held, and sets the guards in the same
// call.
//
//	KEYS[1]   queue:<q> (immediate) or schedule (scheduled)
//	KEYS[2]   queues
//	KEYS[3..] guard keys
//	ARGV[1]   payload    ARGV[2] queue name    ARGV[3] score, "" for an immediate push
//	ARGV[4]   jid
//	then per guard i: ARGV[3+2i] TTL in ms, ARGV[4+2i] flags ("r" reentrant, "x" replace)
//
// Returns {1} when pushed, {0, i, holder} when guard i (1-based) is held by holder.
//
// Redis does not roll a script back when a command fails, so the order matters: guards
// are read (a wrong-typed guard key fails here, before anything is written), the job is
// pushed, and only then are the guards set. A push Redis refuses (say, WRONGTYPE on the
// queue) leaves no guard behind.
const GuardedPushLua = `local n = #KEYS - 2
for i = 1, n do
  local flags = ARGV[4 + 2 * i]
  if not string.find(flags, "x", 1, true) then
    local cur = redis.call("GET", KEYS[2 + i])
    if cur and not (cur == ARGV[4] and string.find(flags, "r", 1, true)) then
      return {0, i, cur}
    end
  end
end
if ARGV[3] == "" then
  redis.call("SADD", KEYS[2], ARGV[2])
  redis.call("LPUSH", KEYS[1], ARGV[1])
else
  redis.call("ZADD", KEYS[1], ARGV[3], ARGV[1])
end
for i = 1, n do
  redis.call("SET", KEYS[2 + i], ARGV[4], "PX", ARGV[3 + 2 * i])
end
return {1}
`

// guardedPushScript runs GuardedPushLua.
var guardedPushScript = redis.NewScript(GuardedPushLua)
