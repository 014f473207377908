package periodic

import "github.com/redis/go-redis/v9"

// claimScript claims one tick of one job: the atomic step that makes a tick enqueued
// once across every Ferry scheduler and every sidekiq-cron poller.
//
// sidekiq-cron 1.8.0 claims a tick with ZADD cron_job:<name>:enqueued <score> <tick>,
// where <tick> is the tick's ISO 8601 time: the reply says whether the member was new,
// and only the poller that added it enqueues. Ferry adds the same member with ZADD NX in
// this script, so Ruby and Ferry contend for one guard. In the same call the script
// checks that the job still exists with the spec the tick was computed from and is
// enabled (so disabling in the Web tab takes effect at once), and records the claim in
// Ferry's pending set, from which a push interrupted by a crash is recovered.
//
// KEYS: cron_jobs, cron_job:<name>, cron_job:<name>:enqueued, ferry:cron:pending
// ARGV: set member, tick member, tick score, expected cron, pending member, pending score
// Reply: "claimed", "taken", "disabled", "changed" (spec differs) or "gone".
var claimScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 'gone' end
if redis.call('TYPE', KEYS[2]).ok ~= 'hash' then return 'gone' end
local f = redis.call('HMGET', KEYS[2], 'status', 'cron')
if f[2] ~= ARGV[4] then return 'changed' end
if f[1] and f[1] ~= 'enabled' then return 'disabled' end
if redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[2]) == 0 then return 'taken' end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
return 'claimed'
`)

// finishScript records a pushed tick as sidekiq-cron does after an enqueue: the job's
// last_enqueue_time, an entry in its jid history (trimmed), and the enqueued set trimmed
// of ticks older than a day (never of the tick just enqueued); and it drops the claim from
// the pending set. The job's keys are written only if its hash still exists, so a job
// deleted meanwhile leaves nothing behind.
//
// KEYS: cron_job:<name>, cron_job:<name>:enqueued, cron_job:<name>:jid_history,
// ferry:cron:pending
// ARGV: last_enqueue_time, history entry ("" for none), last history index, trim score,
// pending member
var finishScript = redis.NewScript(`
redis.call('ZREM', KEYS[4], ARGV[5])
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
redis.call('HSET', KEYS[1], 'last_enqueue_time', ARGV[1])
if ARGV[2] ~= '' then
  redis.pcall('LPUSH', KEYS[3], ARGV[2])
  redis.pcall('LTRIM', KEYS[3], 0, tonumber(ARGV[3]))
end
redis.pcall('ZREMRANGEBYSCORE', KEYS[2], 0, '(' .. ARGV[4])
return 1
`)

// registerScript writes one of this scheduler's jobs into sidekiq-cron's storage, as
// Sidekiq::Cron::Job#save does: the member in cron_jobs, the definition fields (only
// those that differ, so that the refresh of an unchanged job writes nothing), the status
// only if none is set (so enabling and disabling from the Web tab survive a restart), and,
// when the job has no enqueued set yet, its latest tick as already enqueued (so a new job
// does not fire for a tick before it existed).
//
// KEYS: cron_jobs, cron_job:<name>, cron_job:<name>:enqueued
// ARGV: set member, initial status, seed member ("" for none), seed score, then field and
// value pairs
var registerScript = redis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
for i = 5, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) ~= ARGV[i + 1] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSETNX', KEYS[2], 'status', ARGV[2])
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
end
return 1
`)

// loadScript reads the fields of one job hash whose key came from the cron_jobs set,
// refusing any field longer than a limit so that a hostile hash cannot make Ferry read
// megabytes.
//
// KEYS: cron_job:<name>
// ARGV: byte limit, field names...
// Reply: {"ok", values...} (nil for a missing field), {"none"}, {"type", <type>}, or
// {"big", <field>, <length>}.
var loadScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then return {'none'} end
if t ~= 'hash' then return {'type', t} end
local limit = tonumber(ARGV[1])
for i = 2, #ARGV do
  local n = redis.call('HSTRLEN', KEYS[1], ARGV[i])
  if n > limit then return {'big', ARGV[i], n} end
end
local out = redis.call('HMGET', KEYS[1], unpack(ARGV, 2))
table.insert(out, 1, 'ok')
return out
`)

// setStatusScript sets a job's status if the job exists. KEYS: cron_job:<name>.
// ARGV: status. Reply: 1, or 0 when there is no such job.
var setStatusScript = redis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return 1
`)
