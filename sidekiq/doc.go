// Package sidekiq is Ferry's core: a Go implementation of Sidekiq's Redis wire format.
//
// Ruby processes and Ferry share one Redis: the same queues, schedule, retry and dead sets,
// process registry and statistics. A Rails app's perform_async can be run by a Go handler,
// and a job pushed from Go can be run by Ruby Sidekiq; the Sidekiq Web UI shows both.
//
// # Jobs
//
// A Job is one payload: the JSON object Sidekiq stores per job. ParseJob reads every shape
// Sidekiq 6.x, 7.x and 8.x write and keeps unknown keys and the original bytes, so a job
// that passes through Go comes out with nothing lost. Job.AppendJSON writes payloads that
// every Sidekiq version reads (float-second timestamps with a fractional part by default;
// see TimeFormat).
//
// # Pushing
//
// A Client pushes jobs:
//
//	client := sidekiq.NewClient(rdb, nil)
//	jid, err := client.Push(ctx, "HardWorker", []any{"bob", 5}, sidekiq.Queue("critical"))
//	jid, err = client.Push(ctx, "ReportWorker", nil, sidekiq.In(10*time.Minute))
//	jids, err := client.PushBulk(ctx, "IndexWorker", [][]any{{1}, {2}, {3}})
//
// Options are a closed set (Queue, In, At, Retry, NoRetry, JID, RetryQueue, Extra). Push
// middleware (Client.Use) can change or stop a push; a stopped push returns an error that
// matches ErrPushStopped. PushJob pushes a job built by the caller; PushJobs pushes many,
// each with its own schedule and PushGuards, in one round trip with an outcome per job
// (the outbox relay uses it).
//
// Arguments are encoded so that Ruby sees the types Go sent (see EncodeArgs). Read them back
// with Job.DecodeArgs or Job.ArgsSlice, which keep big integers exact.
//
// # Running jobs
//
// A Server runs jobs with Go handlers, registered by class:
//
//	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 10, Queues: []string{"critical,6", "default,2"}})
//	srv.Handle("HardWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error { ... }),
//		sidekiq.WithMaxRetries(5))
//	err := srv.Run(ctx) // or Start, then Stop
//
// A handler's error decides the job's outcome as Sidekiq's would: retried with Sidekiq's
// delays, then buried in the dead set; Discard buries at once, RetryIn reschedules without
// using a retry, a panic is a *PanicError. Per-class settings are HandleOptions
// (WithMiddleware, WithRetryDelay, WithMaxRetries), which hold whatever the handler is
// wrapped in. Services (AddService) start and stop with the server; Observers (Observe)
// hear every job's outcome, for metrics.
//
// # Inside a Server
//
// A Server wires components, each a struct built from explicit dependencies, each owning
// its own state, none holding a pointer back to the Server:
//
//	component   state it owns                            goroutines
//	store       the keyspace, every Lua script, every    none (called by the others)
//	            Redis call (store.go, scripts.go,
//	            keys.go on internal/sidekeys)
//	register    the jobs this process holds, by field;   none (called by the others)
//	            running jobs by worker; free slots and
//	            bytes waiting (inflight.go)
//	fetcher     the queue order, the fetch seqs          one loop, one wait per idle queue
//	executor    the work channel, job contexts           Concurrency workers
//	completer   acks and outcomes not yet written        one writer
//	heartbeat   what the Busy page holds of this         one loop
//	            process's running jobs
//	scheduler   (none)                                   one loop
//	recoverer   (none)                                   one loop
//	reconciler  (none)                                   one loop
//
// A job's way: the fetcher moves it from its queue into this process's in-flight hash
// (one Lua call, atomically, up to Config.PrefetchBytes) and the register holds it; a
// worker runs it through the middleware and its handler; decide, a pure function of the
// job, the error, the handler's options and the time, turns the run into an Outcome
// (succeeded, retried at T, dead, dropped, rescheduled, requeued); the completer writes
// that outcome (an HDEL for a success; for the others one Lua call that moves the job out
// of the hash into the retry, schedule or dead set) and only then releases the job from
// the register, counts it, logs it and tells the observers. Until its outcome is written a
// job is in the in-flight hash, so a crash runs it again (at least once) and never loses
// it; a recoverer in another process returns the hash's jobs to their queues once this
// process's record has expired (Config.ProcessTTL).
//
// Every write can be repeated safely (see store.go for what a repeat of each call does),
// so the completer retries failed writes itself; calls that must not run twice (the fetch,
// guarded pushes, the heartbeat) are never re-sent by go-redis. Stop returns by its
// deadline plus a few seconds even when Redis hangs.
//
// # Payloads are untrusted
//
// Anyone who can LPUSH can hand a Server any bytes. A payload that is not a runnable job
// goes to the dead set with the reason, once, and never crashes the process; no payload
// field names a Redis key outside its keyspace (a "queue" is only ever appended to
// "queue:"); fetches and the Busy page are bounded in bytes; log lines about jobs are
// sampled and their payload-derived fields cut.
//
// # Redis Cluster
//
// Ferry runs on Redis Cluster when every key it uses lives in one hash slot: give the
// Client and the Server a Namespace that is a hash tag, such as "{ferry}". Every key is
// then "{ferry}:queue:default", "{ferry}:retry", ..., and Redis hashes it on "ferry" alone.
// That is needed because Ferry's Lua scripts and MULTI/EXEC blocks touch several keys at
// once (the fetch moves jobs from a queue into the process's in-flight hash; an outcome
// moves a job from that hash into the retry set; a guarded push sets its guard and pushes
// the job), which a cluster allows only within one slot. The whole of Ferry's data is thus
// on one node: a cluster gives you failover of that node through its replicas, not a load
// spread over several. Pushing, running, retries, the schedule and recovery of a dead
// process's jobs are tested on a real three-node cluster.
//
//	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: nodes})
//	client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "{ferry}"})
//	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Namespace: "{ferry}"})
//
// A *redis.ClusterClient (or a *redis.Ring, which shards by key as well) with a Namespace
// that is not a hash tag is refused before anything is written: pushes fail and Start
// returns an error matching ErrClusterNamespace. Redis hashes a key on what lies between
// its first '{' and the first '}' after it, so the tag must be closed and not empty within
// the namespace ("app{ferry}" works, "{}app" does not). Ruby Sidekiq itself does not
// support Redis Cluster; a fleet mixing Ruby and Go processes on a cluster would need
// redis-namespace with the same hash tag on the Ruby side, which Sidekiq 7 and later no
// longer support.
package sidekiq
