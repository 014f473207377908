// Package periodic runs cron-like jobs: each tick of each job is enqueued once, however
// many Ferry processes and Ruby sidekiq-cron pollers run the schedule, and the schedules
// live in sidekiq-cron's keys, so Rails and Go share them.
//
// # 1. Define jobs
//
//	sched := periodic.New(rdb, client, nil) // client: the *sidekiq.Client to enqueue with
//	err := sched.Add(periodic.Job{Name: "nightly_report", Spec: "0 3 * * *", Class: "ReportWorker", Args: []any{"daily"}})
//	err = sched.Add(periodic.Job{Name: "heartbeat", Spec: "@every 30s", Class: "HeartbeatJob", Queue: "low"})
//
// A Spec is 5 cron fields (minute hour day-of-month month day-of-week), 6 with seconds
// first, a descriptor (@hourly, @daily, @weekly, @monthly, @yearly), or "@every d" in
// whole seconds. Parsing is robfig/cron/v3's. A time zone goes in front ("CRON_TZ=Europe/Berlin
// 0 3 * * *"), at the end as sidekiq-cron writes it ("0 3 * * * Europe/Berlin"), or in
// Job.Location; without one, Config.Location (default time.Local, as sidekiq-cron reads
// zoneless specs in each process's local zone). "@every d" ticks at the multiples of d
// since the Unix epoch, so every process agrees on its ticks whenever it started. Add
// checks the job at once: a spec it cannot parse is an error matching ErrBadSpec that says
// what is wrong ("expected 5 fields ... found 4").
//
// # 2. Run the scheduler
//
//	periodic.Attach(srv, sched) // the server starts and stops it (srv.AddService)
//	// or: err := sched.Start(ctx) ... sched.Stop(ctx); or sched.Run(ctx)
//
// A scheduler writes its jobs into Redis and then wakes at every tick of every job. Run
// one in every process if you like: there is no leader to elect, nothing to fail over.
// Unless Config.OwnJobsOnly is set it also enqueues the jobs other processes defined,
// Ruby's included, so a fleet that has moved to Go keeps the Rails schedules running.
//
// # 3. Exactly once per tick
//
// A tick is identified by its time (second precision, UTC). sidekiq-cron 1.8.0 claims a
// tick by adding that time, in ISO 8601, to the sorted set cron_job:<name>:enqueued, and
// enqueues only if the member was new. Ferry claims with ZADD NX on the same member, in a
// Lua script that also checks that the job exists, is enabled and still has the spec the
// tick was computed from. Ruby pollers and Ferry schedulers therefore contend for one
// guard: one of them wins each tick and enqueues one job. Clock skew between hosts moves
// when a tick is enqueued (by the skew), never how often. A scheduler tries every tick
// since the last one it dealt with that is at most Config.Grace (60 s) old, so a paused
// or slow process still covers each tick as long as some scheduler gets to it in time.
//
// A claim is recorded in Ferry's pending set (ferry:cron:pending) in the same script, and
// the job is pushed through the Client (its push middleware runs, as sidekiq-cron's
// pushes run Ruby's client middleware) with a push guard (a sidekiq.PushGuard) for the
// tick. If the claiming process dies before the push, or Redis fails it, any scheduler
// pushes the tick after Config.RecoverAfter; if the first push did happen, the guard
// turns the second into a no-op. (A claim still pending after 10 minutes, because every
// scheduler was down that long, is dropped like any other missed tick.) So a SIGKILL at any point loses no tick and doubles
// none, given a Redis that keeps what it acknowledged (appendonly yes, appendfsync
// always). Ruby's own pollers claim and push in separate steps, as sidekiq-cron does.
// The claim touches keys of several hash slots in one script, so the package needs a
// single Redis (or a primary with replicas), not Redis Cluster.
//
// After downtime (every scheduler stopped, Redis unreachable) ticks older than Grace are
// skipped, as sidekiq-cron skips them; with Job.CatchUp the newest missed tick runs once,
// however late. A job new to Redis is registered with its latest tick marked as done, so
// it does not fire for a time before it existed.
//
// # 4. sidekiq-cron's storage
//
// A Ferry job is a sidekiq-cron job: its key is in the cron_jobs set, its hash
// cron_job:<name> holds name, klass, cron (fugit's syntax), args, message (the payload a
// Ruby poller pushes), status, description, last_enqueue_time ("%Y-%m-%d %H:%M:%S %z")
// and the rest of sidekiq-cron's fields; each enqueue adds {"jid","enqueued"} to
// cron_job:<name>:jid_history. Sidekiq::Cron::Job.all lists it and the Web tab shows it
// with its last enqueue time, status and jids. Enable and Disable on the tab (or Enable
// and Disable here) take effect at the next tick: the status is checked in the claim.
// Add never resets a status (Job.Disabled only sets the first one). Deleting a Ferry job
// on the tab lasts until its scheduler next writes it (Config.RefreshInterval). A spec
// that fugit cannot read (an "@every 7s" that is no cron schedule) is listed by Ruby but
// run only by Ferry.
//
// Ruby-defined jobs are read the way sidekiq-cron reads them: the message's class, queue
// and options with the hash's args; active_job, queue_name_prefix and date_as_argument
// are honoured. A job whose class is an ActiveJob class but is not marked active_job is
// enqueued as a plain Sidekiq job (sidekiq-cron decides that by loading the class, which
// Go cannot do): mark such jobs active_job in the schedule.
//
// # 5. What is read from Redis is untrusted
//
// Anyone who can write to Redis can write a cron job. A job's name only ever becomes the
// tail of a cron_job: key, a queue name only the tail of a queue: key (no whitespace or
// control characters, at most 512 bytes), every field read is capped at 64 KiB and the
// number of jobs at Config.MaxJobs; a job that breaks any rule, or whose spec does not
// parse, is skipped and logged once (fields cut by internal/logcap), never a crash.
//
// # 6. Listing
//
// List reads every job with its spec, status, last enqueue time, next tick and, for a job
// that cannot run, the reason: what the `ferry cron` command prints.
package periodic
