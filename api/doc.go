// Package api reads and changes Sidekiq's state in Redis the way Ruby's Sidekiq::API
// does: statistics and history, queues, processes, running jobs, and the schedule, retry
// and dead sets. Ruby Sidekiq 6.x, 7.x and 8.x processes and Ferry servers share that
// state; this package sees all of it, and what it changes, Ruby and the Web UI see as if
// Ruby had changed it. The ferry command (cmd/ferry) is built on it, and so is the
// Prometheus collector.
//
// # Reading
//
//	sk := api.New(rdb, nil) // rdb is a redis.UniversalClient; nil config = defaults
//	st, err := sk.Stats(ctx)
//	fmt.Println(st.Processed, st.Failed, st.Enqueued, st.Retries, st.Dead)
//	for _, q := range st.Queues {
//		fmt.Println(q.Name, q.Size, q.Latency, q.Paused)
//	}
//
// Stats costs two pipelined round trips whatever the number of queues and processes
// (names first, then every size, oldest job and busy count), so it can run on every
// Prometheus scrape. Queues, Queue and History read the queue list and the daily
// counters; Processes lists the live processes (Ruby and Ferry: Process.Runtime tells
// them apart) and Workers the jobs they are running.
//
// Timestamps are read as every Sidekiq version writes them: float seconds (6.x, 7.x),
// integer milliseconds (8.x), numeric strings. Latency is Sidekiq 8's: the time since
// the oldest job's enqueued_at, or its created_at when it has none, never negative.
//
// # The job sets
//
// Each walks a set (ScheduledSet, RetrySet, DeadSet) in the Web UI's order, an Entry at a
// time, with an optional Filter (jids, class, queue, error text, age):
//
//	err := sk.Each(ctx, api.RetrySet, &api.Filter{Class: "HardWorker", Error: "timeout"},
//		func(e *api.Entry) error {
//			fmt.Println(e.JID(), e.At(), e.Job.ErrorMessage)
//			return nil
//		})
//
// A set is read a page at a time (Config.PageSize, 500) and the filter applied to each
// page as it arrives: a dead set of a million entries never sits in memory. Paging goes
// by score, so entries taken from the front meanwhile (the scheduler polls the retry set
// all the time) shift nothing. A Filter with jids searches with ZSCAN MATCH instead of
// reading every entry. EachInQueue does the same for the jobs waiting in a queue.
//
// # Changing the sets
//
//	res, err := sk.Retry(ctx, api.RetrySet, &api.Filter{JIDs: []string{jid}})
//	res, err = sk.Kill(ctx, api.RetrySet, &api.Filter{Error: "RecordNotFound"})
//	res, err = sk.Delete(ctx, api.DeadSet, &api.Filter{OlderThan: 30 * 24 * time.Hour})
//
// Retry is Ruby's SortedEntry#retry (retry and dead entries: retry_count goes down by one,
// so a manual retry uses up no attempt) and #add_to_queue (scheduled entries), with
// enqueued_at set to now and Sidekiq::Client's defaults for a missing queue, retry, jid or
// created_at. Kill is SortedEntry#kill: the entry goes unchanged into the dead set, scored
// now, and the dead set is trimmed to DeadMaxJobs and DeadTimeout as Sidekiq trims it.
// Delete removes entries. A nil filter means every entry (Ruby's retry_all, kill_all).
//
// Unlike Ruby's API, which removes an entry and then pushes it in a second call, each
// entry moves in one Lua call that removes it by its exact bytes and pushes it in the
// same step, a page of entries per call: no crash or lost connection can lose a job
// between the two, and an entry someone else moved first is counted as Gone, not
// duplicated. A payload that is not a valid job is never removed by Retry (Ruby would
// remove it and then fail to push it); it is counted in Result.Skipped, with the reason.
// DeleteFromQueue and ClearQueue remove jobs waiting in a queue.
//
// # Processes
//
// Quiet and Stop push TSTP and TERM onto <identity>-signals (LPUSH and a 60 s EXPIRE in
// one MULTI, as the Web UI's buttons do); the process acts at its next heartbeat. Both
// refuse an unknown or expired process (ProcessNotFoundError) and an embedded Sidekiq
// (ErrEmbedded). Signal sends any signal without checks. CleanupProcesses is Ruby's
// ProcessSet#cleanup; nothing else here writes to the processes set.
//
// # Namespaces
//
// Config.Namespace reads and writes the keys redis-namespace prefixed for Sidekiq 6
// ("ns:queue:default", "ns:retry", ...); values such as queue names and process
// identities carry no prefix, as with redis-namespace.
package api
