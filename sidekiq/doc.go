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
package sidekiq
