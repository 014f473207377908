// Package locks provides unique-job locks on top of package sidekiq.
//
// # Queue lock
//
// QueueLock makes a second push of a job with the same lock key a no-op while the first is
// still waiting (TResque's queue_lock). The lock is taken in the same Lua call as the push
// (sidekiq.PushGuard), so a failed push leaves no lock and a held lock means nothing was
// pushed; Push then returns the holder's jid. The lock is released, by compare-and-delete
// on the jid, when a Server starts the job's handler. Pushes by the holder's own jid (a
// caller passing sidekiq.JID) pass and refresh the TTL; the scheduler and the retry poller
// move jobs without checking the lock, so a promoted job is never blocked by it. If the
// lock expired while the job waited, the job still runs.
//
// Install one value on both sides, with the Redis namespace the Client and Server use:
//
//	lock := locks.QueueLock(rdb, locks.Inputs("user_id"), locks.Classes("ReportWorker"))
//	client.Use(lock) // takes the lock with the push
//	srv.Use(lock)    // releases it when the job starts
//
// The push records the key it took in the payload (PayloadKey), and the server releases
// that key; a job without it (pushed by an older producer) has its key computed from the
// server's options. The release happens just before the handler (sidekiq.OnHandlerStart),
// wherever the lock sits in the middleware chain:
//
//   - a job rescheduled before its handler starts (sidekiq.RetryIn from a later middleware,
//     such as a held worker lock) keeps its lock, set again to its jid for the delay plus
//     TTL, so identical pushes still collapse onto the waiting job;
//   - a job whose chain ends otherwise before the handler (a middleware fails it or
//     completes it) has its lock released then;
//   - retries: the lock is released at the first start, so a job that failed waits in the
//     retry set without it, and an identical push made meanwhile is accepted (the retry
//     is promoted and runs anyway; its start leaves the new job's lock alone). A job the
//     handler itself reschedules with RetryIn is in the same position.
//
// A scheduled push's lock lives for its delay plus TTL. Jobs whose args[0] is not a JSON
// object cannot be pushed through the lock (the push fails with ErrNoInputs); limit the
// lock with Classes when a Client also pushes other jobs. ActiveJob payloads are refused
// the same way (ErrActiveJob): their args[0] is the envelope, not the job's inputs.
//
// # Worker lock
//
// WorkerLock lets at most one job with the same lock key run at a time, across every
// process working the Redis (TResque's worker_lock). Install it with Server.Use:
//
//	wlock := locks.WorkerLock(rdb, locks.Inputs("account_id"), locks.Classes("SyncAccount"))
//	srv.Use(wlock)
//
// Before the job runs it takes a lease: SET <key> <jid> NX PX <lease> (Lease, default 30 s).
// While the handler runs, the lease is renewed every third of it by a compare-and-extend
// script, and when the chain returns it is released by compare-and-delete, so a holder that
// outlived its lease never frees or extends a lock another job has taken since. If a
// renewal finds the lock gone or held by another job (or cannot reach Redis before the
// lease runs out), the lock is lost: that is logged (Logger), and the handler's context is
// cancelled with cause ErrLeaseLost (context.Cause), because another job may now run
// beside it; the job's error then matches ErrLeaseLost and the job is retried as any
// failure. A process killed while holding a lock leaves it for at most one lease.
//
// The lease is not reentrant: a lock held by the same jid (a crashed run whose lease has
// not run out, whose job was recovered) is contention like any other.
//
// On contention the job is not run: the middleware returns sidekiq.RetryIn, so the job goes
// back to the schedule without using up a retry, without an error recorded on it, and
// without counting as failed in the statistics. The delay backs off: base·2^(n-1) after
// the n-th contention in a row, capped, minus a random jitter of up to half (Backoff,
// default 1 s and 1 min), so waiting jobs spread out and Redis traffic stays bounded (each
// waiting job makes at most one attempt per delay). n is kept in the payload under WaitsKey
// ("ferry_lock_waits") and removed once the job gets the lock. A rescheduled job waits in
// the schedule and then goes to the back of its queue: jobs waiting for a lock do not keep
// their FIFO order, and a job that keeps losing the race can wait long (there is no limit
// on attempts; the lease bounds how long a crashed holder blocks it).
//
// With a queue lock on the same jobs, the waiting job keeps its queue lock (see above), in
// either middleware order: when the worker lock comes first in the chain it adds the delay
// to the remaining TTL of the job's queue lock (the key recorded in the payload) itself.
// Both take the same
// Namespace, Classes and RedisNamespace options; Inputs may differ (a queue lock on the
// report's inputs, a worker lock on the account).
//
// A job whose worker lock key cannot be computed (args[0] is not a JSON object, or an
// ActiveJob payload) is sent to the dead set with sidekiq.Discard; limit the lock with
// Classes. If Redis cannot be reached to take the lease, the job fails and is retried.
//
// # Ruby producers
//
// locks/ruby/ferry_queue_lock.rb (a single file needing only sidekiq 6.x to 8.x and Ruby's
// digest and json) is a Sidekiq client middleware that takes the same queue lock when Rails
// pushes: the same key by the rule below, set by the same Lua script (a byte-identical copy
// of the core's guarded-push script, guardedPushLua in sidekiq/scripts.go) in the same Redis
// call as the push, with the key recorded under PayloadKey so a Go Server releases it.
// Install it in config/initializers/sidekiq.rb, for the client and, because Sidekiq servers
// push too, for the server:
//
//	require Rails.root.join("lib/ferry_queue_lock").to_s
//	locks = {classes: {"ReportWorker" => {inputs: %w[user_id]}}}
//	Sidekiq.configure_client { |c| c.client_middleware { |ch| ch.add FerryQueueLock, locks } }
//	Sidekiq.configure_server { |c| c.client_middleware { |ch| ch.add FerryQueueLock, locks } }
//
// Per class it takes inputs, namespace, ttl (seconds, default 3600) and on_conflict (:drop,
// :raise, :replace), matching Inputs, Namespace, TTL and OnConflict. An accepted push returns
// the new jid; a collapsed one writes nothing and returns the holder's jid (with :raise it
// raises FerryQueueLock::LockedError). A scheduled push goes to the schedule set with a lock
// TTL of ttl plus the delay. A payload that already carries PayloadKey (Sidekiq's scheduler
// promoting a scheduled job or a retry) passes unchecked, as it does through a Go Server's
// scheduler. locks/ruby/README.md has the details.
//
// # sidekiq-unique-jobs
//
// Jobs pushed by Ruby with the sidekiq-unique-jobs gem (v7 and v8 key layout) carry their
// lock in the payload: "lock" (the type) and "lock_digest" (or the older "unique_digest"),
// the gem's key "uniquejobs:<hash>". UniqueJobs is server middleware that releases that
// lock at the point the gem's own server middleware would, with a Lua script that does what
// the gem's unlock.lua does (HDEL the jid from <digest>:LOCKED, UNLINK the digest, :INFO,
// :LOCKED and :PRIMED, ZREM it from uniquejobs:digests, wake the gem's waiters through
// :QUEUED, and add an entry to uniquejobs:changelog), and only when the job's jid holds the
// lock:
//
//   - until_executing: released before the handler; taken back if the handler fails and
//     nobody else holds it, so the retry stays unique (gem v8.1).
//   - until_executed: released after the handler succeeds; a failed run keeps it through
//     its retries (gem v8.1, PR #931; v8.0 released it on failure).
//   - until_expired: never released; the TTL does it.
//   - while_executing: a runtime lock on "<digest>:RUN" (the gem's keys, so Ruby and Go
//     runs exclude each other), taken before the handler and released after it whatever
//     the outcome. Its TTL is lock_ttl, or UniqueRunLease (30 s) without one, renewed every
//     third of it while the handler runs, so a crashed Go process frees it within one TTL.
//     When another job holds it, the job is rescheduled with sidekiq.RetryIn (5 s, no retry
//     used up; the error matches ErrRunLockHeld) instead of the gem's default silent drop.
//   - until_and_while_executing: the client lock is released before the handler and the
//     runtime lock held around it; a failed or rescheduled run takes the client lock back.
//   - an unknown type: the job is not run; it fails with an *UnsupportedLockError
//     (ErrUnsupportedLock) and goes to the retry set, where a Ruby process may take it.
//
// Set sidekiq.Config.OnDeath to the middleware's OnDeath so that a job that dies releases
// its lock, as the gem's death handler does. Deliberate differences from the gem, all so
// that no job is lost: a job whose lock is gone or held by another jid when it starts
// still runs (the gem skips it, dropping the job); a contended runtime lock reschedules
// (whatever the job's on_conflict says); nothing, the death handler included, deletes a
// lock another jid holds. Only lock_limit 1 is supported for runtime locks (a higher limit
// is treated as 1).
//
//	uj := locks.UniqueJobs(rdb)
//	srv := sidekiq.NewServer(rdb, &sidekiq.Config{OnDeath: uj.OnDeath})
//	srv.Use(uj)
//
// A digest is honoured only in the form the gem writes it (see "Keys and payloads"
// below); a job whose digest is anything else runs as an unlocked job. With a lock_prefix
// other than the gem's default "uniquejobs", name it with UniqueLockPrefix.
//
// The gem's orphan reaper deletes locks whose job it cannot find in a queue, the schedule
// or retry set, or a listed process's <identity>:work hash; a Go Server publishes its
// running jobs there with their payload, so the reaper sees them. With no Ruby Sidekiq
// server running, nothing reaps, and locks of lost jobs without lock_ttl stay.
//
// # Keys and payloads
//
// A payload is untrusted input: whatever pushed it (a Ruby app, another service, anyone
// who can write to Redis) chose every field. The rule of this package is that no payload
// value chooses a Redis key outside the keyspace it belongs to:
//
//   - queue and worker lock keys are "ferry:lock:queue:<hex>" and "ferry:lock:worker:<hex>",
//     the hex a SHA-256 of the job's inputs (see "Lock key"): payload values are hashed,
//     never put into a key as they are;
//   - the queue lock key a push records in the payload (PayloadKey) is used only when it
//     has exactly that form (ValidQueueKey); any other value counts as absent, so the run
//     side computes the key from the job's inputs when the lock applies to its class, and
//     touches nothing when it does not;
//   - a sidekiq-unique-jobs digest (lock_digest, or unique_digest) is used only in the form
//     the gem writes it: "<lock prefix>:<hex>", hex being 32 (MD5, the gem's legacy
//     algorithm) or 64 (SHA3-256) lowercase hex digits, optionally followed by ":RUN".
//     Anything else ("queue:critical", "retry", "uniquejobs:digests", ...) means the job
//     has no lock: it runs as an unlocked job, and no key is read or written for it.
//     Unlock refuses such a digest with an error matching ErrInvalidDigest;
//   - jids go into the Lua scripts as arguments, never as keys.
//
// A refused value is logged once per middleware and reason (logger options Logger and
// UniqueLogger), with the first offending job as example, never once per job: a producer
// pushing such payloads in a loop cannot flood the log.
//
// # Lock key
//
// A lock key is computed from a namespace (the job class by default) and the job's named
// inputs: args[0], a JSON object. The rule, exact enough to recompute in Ruby:
//
//  1. Choose the names: the names configured with Inputs, or, when none are, every key of
//     args[0] except "locale" and "tz". Sort them by byte order (Go sort.Strings, Ruby
//     Array#sort on UTF-8 strings). A duplicate name counts once.
//  2. For each name take the value's JSON token as it appears in the payload, compacted
//     (insignificant whitespace removed, nothing else changed: no re-escaping, no number
//     normalisation, object keys kept in payload order). So 42, 42.0 and "42" all differ.
//     A name missing from args[0] contributes the empty string.
//  3. Build the string: namespace, NUL, then for each name: name, NUL, token, NUL.
//  4. Take the SHA-256 of its UTF-8 bytes, in lowercase hex.
//  5. The queue lock key is "ferry:lock:queue:<hex>", the worker lock key
//     "ferry:lock:worker:<hex>"; a client or server namespace is put in front of both as
//     for every other key ("<ns>:ferry:lock:queue:<hex>").
//
// In Ruby, step 2 is JSON.generate(value) on the value as Sidekiq serialises it: both
// write compact JSON with UTF-8 and "<", ">", "&" unescaped, as Ferry's EncodeArgs does.
// Tokens are compared as written, so a producer must write a value the same way to share
// a key: Go's encoding/json with HTML escaping ("\u003c") or a float written as 1 by one
// side and 1.0 by the other give different keys. Object values keep their written key
// order (Go sorts map keys, Ruby keeps insertion order), so prefer scalar or array inputs
// for locks shared with Ruby.
package locks
