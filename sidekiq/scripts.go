package sidekiq

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/go-redis/v9"
)

// Every Lua script of Ferry's core, each with its KEYS and ARGV. Each runs atomically in
// Redis. The store runs them (see store.go); the Client runs guardedPushLua.
//
// The in-flight hash. A Ferry process keeps the jobs it has taken in one hash of its own,
// ferry:inflight:<identity>: field "<seq>:<queue>" (seq is a number the process never
// reuses), value the job's exact bytes. Acknowledging a job is HDEL of its short field,
// so an ack never sends the payload back and is safe to repeat; duplicate payloads (two
// pushes of the same bytes) are distinct fields. Recovery gets the exact bytes back and
// the queue from the field. The hash is named in the index ferry:inflight (field: the
// hash's key, value: the owner's identity) that recoverers read.

// fetchLua moves jobs from queues into this process's in-flight hash, in one atomic step:
// a job is always in exactly one place, never only in memory. It takes at most ARGV[1]
// jobs and stops once the payloads taken reach ARGV[2] bytes (it takes at least one job),
// putting back any it popped beyond that. The hash is (re)registered in the index in the
// same step, so a recoverer that dropped it (this process's heartbeat came late) finds it
// again should the process then die. A call whose seqs lie below the fence (an adopt gave
// it up: see adoptLua) does nothing. Needs Redis 6.2 or later (RPOP with a count).
//
//	KEYS[1..n]        queue:<q> for each queue, in the order to try
//	KEYS[n+1]         the in-flight hash
//	KEYS[n+2]         the in-flight index
//	KEYS[n+3]         the fence
//	ARGV[1]           how many jobs to take at most (w)
//	ARGV[2]           how many payload bytes to take at most (at least one job is taken)
//	ARGV[3]           seq base (the fence compares it)
//	ARGV[4]           the index value (this process's identity)
//	ARGV[5..n+4]      how many more jobs each queue may give (-1 = no cap)
//	ARGV[n+5..2n+4]   each queue's name, for the fields
//	ARGV[2n+5..2n+4+w] the seqs base+1..base+w as decimal text: the k-th job taken gets
//	                  field ARGV[2n+4+k]..":"..queue name (passed in, so that no number
//	                  is formatted in Lua, which costs Redis a printf per job)
//	ARGV[2n+5+w..]    optional, weighted mode: for each job slot, the queue (1-based)
//	                  drawn for it; each queue first gets the slots drawn for it, and slots
//	                  left over (a queue ran dry) go to the queues in KEYS order
//
// Returns {r, q1, c1, ..., qr, cr, payload, payload, ...}: r runs of c jobs taken from queue
// q (1-based, in KEYS order), then the payloads in the order taken. The k-th payload's field
// is (base+k)..":"..name. Jobs are taken from the tail (Sidekiq pushes with LPUSH and pops
// with BRPOP), oldest first.
const fetchLua = `
local n = #KEYS - 3
local want = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local seq = tonumber(ARGV[3])
local fence = redis.call('GET', KEYS[n + 3])
if fence and seq < tonumber(fence) then return {0} end
local seqAt = 2 * n + 4
local allow, suffix = {}, {}
for i = 1, n do
  allow[i] = tonumber(ARGV[4 + i])
  suffix[i] = ':' .. ARGV[4 + n + i]
end
local jobsOut, fields, runs = {}, {}, {}
local taken, nfields, bytes = 0, 0, 0
local function take(i, k)
  if k <= 0 or allow[i] == 0 or bytes >= budget then return 0 end
  if allow[i] > 0 and k > allow[i] then k = allow[i] end
  local jobs = redis.call('RPOP', KEYS[i], k)
  if not jobs then
    allow[i] = 0
    return 0
  end
  local got, sfx = 0, suffix[i]
  for j = 1, #jobs do
    local job = jobs[j]
    local size = #job
    if taken > 0 and bytes + size > budget then
      for r = #jobs, j, -1 do redis.call('RPUSH', KEYS[i], jobs[r]) end
      bytes = budget
      break
    end
    bytes = bytes + size
    got = got + 1
    taken = taken + 1
    jobsOut[taken] = job
    fields[nfields + 1] = ARGV[seqAt + taken] .. sfx
    fields[nfields + 2] = job
    nfields = nfields + 2
  end
  if got > 0 then
    runs[#runs + 1] = i
    runs[#runs + 1] = got
  end
  if got < k then
    allow[i] = 0
  elseif allow[i] > 0 then
    allow[i] = allow[i] - got
  end
  return got
end
local left = want
if #ARGV > seqAt + want then
  local quota = {}
  for s = seqAt + want + 1, #ARGV do
    local q = tonumber(ARGV[s])
    quota[q] = (quota[q] or 0) + 1
  end
  for i = 1, n do
    if quota[i] then left = left - take(i, quota[i]) end
  end
end
for i = 1, n do
  if left <= 0 or bytes >= budget then break end
  left = left - take(i, left)
end
if taken == 0 then return {0} end
redis.call('HSET', KEYS[n + 1], unpack(fields))
redis.call('HSET', KEYS[n + 2], KEYS[n + 1], ARGV[4])
local out = {#runs / 2}
for r = 1, #runs do out[r + 1] = runs[r] end
local base = #runs + 1
for j = 1, taken do out[base + j] = jobsOut[j] end
return out
`

// adoptLua returns the entries of the in-flight hash whose seq lies in (ARGV[1], ARGV[2]]:
// after a fetch whose reply was lost, exactly the jobs that fetch took (only this
// process's fetches write its hash, and each uses seqs of its own). First it raises the
// fence to ARGV[2], so that if the fetch has not run yet (its request still on its way,
// on another connection) it does nothing when it arrives: the fetch then took nothing,
// and never will.
//
//	KEYS[1]  the in-flight hash        KEYS[2]  the fence (kept an hour)
//	ARGV[1]  lowest seq, exclusive     ARGV[2]  highest seq, inclusive
//
// Returns a flat array: field, payload, field, payload, ...
const adoptLua = `
local lo, hi = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('SET', KEYS[2], ARGV[2], 'PX', 3600000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local s = tonumber(string.match(all[i], '^(%d+):'))
  if s and s > lo and s <= hi then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`

// outcomeLua writes the outcomes of finished jobs: each job leaves the in-flight hash and,
// in the same step, goes to the retry, schedule or dead set, or nowhere (dropped). A job
// whose field is already gone (its outcome was written before, or it was pushed back to
// its queue) is skipped entirely, so a repeated call writes nothing twice. The dead set is
// trimmed as Sidekiq trims it, when a job was buried.
//
//	KEYS[1]  the in-flight hash
//	KEYS[2]  retry    KEYS[3]  schedule    KEYS[4]  dead
//	ARGV[1]  dead set: members scored at or below it are removed
//	ARGV[2]  dead set: -(max jobs), for ZREMRANGEBYRANK 0 ARGV[2] (as Sidekiq)
//	ARGV     then groups of four: field, target ("r" retry, "s" schedule, "d" dead,
//	         "x" dropped), score, payload
//
// Returns how many outcomes were written.
const outcomeLua = `
local written, buried = 0, false
for i = 3, #ARGV, 4 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    local t = ARGV[i + 1]
    if t == 'r' then
      redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i + 3])
    elseif t == 's' then
      redis.call('ZADD', KEYS[3], ARGV[i + 2], ARGV[i + 3])
    elseif t == 'd' then
      redis.call('ZADD', KEYS[4], ARGV[i + 2], ARGV[i + 3])
      buried = true
    end
    written = written + 1
  end
end
if buried then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, tonumber(ARGV[2]))
end
return written
`

// requeueLua returns jobs this process holds to the head of their queues (the end the next
// fetch takes from): jobs fetched after a quiet or stop began, jobs whose run was given up
// on, and jobs stranded by a lost fetch reply. A field already gone is skipped, so a
// repeated call moves nothing twice.
//
//	KEYS[1]     the in-flight hash
//	KEYS[2..]   queue:<q> for each field, in ARGV order
//	ARGV        the fields
//
// Returns how many jobs were moved.
const requeueLua = `
local moved = 0
for i = 1, #ARGV do
  local job = redis.call('HGET', KEYS[1], ARGV[i])
  if job then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('RPUSH', KEYS[1 + i], job)
    moved = moved + 1
  end
end
return moved
`

// recoverLua returns every job of one process's in-flight hash to the head of its queue
// and deletes the hash. Unless ARGV[2] is "own", it does nothing while the owner's process
// key exists, so a live process's jobs are never taken; because the hash is emptied in the
// same step, a job is returned once however many processes run the script, and a repeated
// call moves nothing twice. The caller reads the fields first (HKEYS) to name the queues;
// if a field names a queue not given (or is not "<seq>:<queue>"), the script moves nothing
// and returns -2, and the caller reads again.
//
//	KEYS[1]     the in-flight hash
//	KEYS[2]     the in-flight index
//	KEYS[3]     the owner's process hash
//	KEYS[4..]   queue:<q> for each queue named in ARGV[3..]
//	ARGV[1]     the field of KEYS[1] in the index
//	ARGV[2]     "own" (the caller is the owner, stopping) or "dead"
//	ARGV[3..]   the queue names of KEYS[4..]
//
// Returns the number of jobs returned, -1 when the owner is alive, -2 when a field names
// a queue not given.
const recoverLua = `
if ARGV[2] ~= 'own' and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local qkey = {}
for i = 3, #ARGV do qkey[ARGV[i]] = KEYS[1 + i] end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local q = string.match(all[i], '^%d+:(.*)$')
  if not q or not qkey[q] then return -2 end
end
for i = 1, #all, 2 do
  redis.call('RPUSH', qkey[string.match(all[i], '^%d+:(.*)$')], all[i + 1])
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return #all / 2
`

// recoverListLua returns the jobs of an in-progress list written by Ferry before 0.2 (one
// list per process and queue, indexed in ferry:inprogress) to the head of its queue and
// deletes the list, unless its owner is alive. Kept so that a fleet upgraded while some
// old process had died loses nothing.
//
//	KEYS[1]  the in-progress list    KEYS[2]  queue:<q>    KEYS[3]  the old index
//	KEYS[4]  the owner's process hash; while it exists, nothing happens
//	ARGV[1]  the field of KEYS[1] in the index
//
// Returns the number of jobs returned, or -1 when the owner is alive.
const recoverListLua = `
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local jobs = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #jobs do
  redis.call('RPUSH', KEYS[2], jobs[i])
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return #jobs
`

// promoteLua moves due jobs from the schedule or retry set onto their queues. The Go side
// has already rewritten each payload (enqueued_at set, "at" removed); the ZREM guard makes
// sure a member is moved by one process only, once, so a repeated call moves nothing twice.
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
const promoteLua = `
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
`

// guardedPushLua is the script behind every guarded push (PushGuard). The Ruby client
// middleware in locks/ruby carries a byte-identical copy (a test checks it), so a lock
// taken from Rails and one taken from Go are the same key, set the same way. It pushes one
// job unless one of its guard keys is held, and sets the guards in the same call.
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
const guardedPushLua = `local n = #KEYS - 2
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

var (
	fetchScript       = newScript(fetchLua)
	adoptScript       = newScript(adoptLua)
	outcomeScript     = newScript(outcomeLua)
	requeueScript     = newScript(requeueLua)
	recoverScript     = newScript(recoverLua)
	recoverListScript = newScript(recoverListLua)
	promoteScript     = newScript(promoteLua)
	guardedPushScript = newScript(guardedPushLua)
)

// script is a Lua script sent by EVALSHA, and by EVAL when Redis does not have it (after
// a restart or SCRIPT FLUSH; a NOSCRIPT reply means the script did nothing, so sending it
// again is safe).
type script struct {
	src string
	sha string
}

func newScript(src string) *script {
	h := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(h[:])}
}

// processor is what runs a command: a client or a pipeline.
type processor interface {
	Process(ctx context.Context, cmd redis.Cmder) error
}

// run runs the script once. go-redis never sends it again on its own (see noRetry): when
// the reply is lost, whether the script ran is unknown, and only the caller can tell
// whether running it again is safe.
func (s *script) run(ctx context.Context, c processor, keys []string, args ...any) *redis.Cmd {
	cmd := s.cmd(ctx, "evalsha", s.sha, keys, args)
	_ = c.Process(ctx, noRetry{cmd})
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd = s.cmd(ctx, "eval", s.src, keys, args)
		_ = c.Process(ctx, noRetry{cmd})
	}
	return cmd
}

// queue adds the script to a pipeline by EVALSHA (bySha) or EVAL.
func (s *script) queue(ctx context.Context, p redis.Pipeliner, bySha bool, keys []string, args ...any) *redis.Cmd {
	var cmd *redis.Cmd
	if bySha {
		cmd = s.cmd(ctx, "evalsha", s.sha, keys, args)
	} else {
		cmd = s.cmd(ctx, "eval", s.src, keys, args)
	}
	_ = p.Process(ctx, noRetry{cmd})
	return cmd
}

func (s *script) cmd(ctx context.Context, verb, body string, keys []string, args []any) *redis.Cmd {
	all := make([]any, 0, 3+len(keys)+len(args))
	all = append(all, verb, body, len(keys))
	for _, k := range keys {
		all = append(all, k)
	}
	all = append(all, args...)
	return redis.NewCmd(ctx, all...)
}

// noRetry marks a command that go-redis must not send again after a network error or a
// timeout. go-redis re-sends a failed command up to MaxRetries times by default; for a
// command whose first send may have run (a fetch that moved jobs, a push), a silent second
// send would act twice and hide the first reply's loss. Ferry's store handles such
// failures itself (see store.go).
type noRetry struct{ *redis.Cmd }

// NoRetry tells go-redis not to re-send the command.
func (noRetry) NoRetry() bool { return true }
