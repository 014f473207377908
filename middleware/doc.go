// Package middleware makes Ferry jobs safe to run again, and easy to share with Rails.
//
// A job can always run twice: a retry after part of it succeeded, a re-delivery after a
// crash, a duplicate push. The practices that make that harmless are to enqueue a job with
// a dictionary of named inputs (ids, not snapshots), to check first whether the work is
// still needed, and to make each side effect happen once. This package gives each practice
// a small tool, plus the glue for Rails jobs, logging and enqueueing inside transactions.
// Nothing here is needed to use the sidekiq package; take what you want.
//
// # Named inputs
//
// Inputs adapts a typed function to a sidekiq.Handler. The job's single argument is a JSON
// object decoded into your struct; unknown keys are ignored and missing keys keep the
// default declared in a `default:"…"` tag (or set by a Defaults method), so producers and
// consumers can be deployed in any order. A Validate method runs after decoding. A payload
// that cannot be decoded goes to the dead set at once, with an *InputError naming the
// class, the input and the problem, instead of failing 25 times.
//
//	type UserIndexInputs struct {
//		UserID int64  `json:"user_id"`
//		Mode   string `json:"mode" default:"full"` // added later; old payloads get "full"
//	}
//
//	srv.Handle("UserIndexWorker", middleware.Inputs(func(ctx context.Context, job *sidekiq.Job, in UserIndexInputs) error {
//		return index(ctx, in.UserID, in.Mode)
//	}))
//
//	jid, err := middleware.Enqueue(ctx, client, "UserIndexWorker", UserIndexInputs{UserID: 42})
//
// Ruby enqueues the same job with UserIndexWorker.perform_async("user_id" => 42).
//
// # Still needed?
//
// Give the inputs type (or a handler, wrapped with CheckNeeded) a method
// Needed(ctx, job) (bool, error) that asks the source of truth whether there is still work
// to do. When it says no, the handler does not run and the job completes: no retry, no
// dead entry, counted as processed by Sidekiq and as skipped by Logging. A handler that
// finds out later returns Skip(ctx, reason).
//
// # Durable steps
//
// Install the Steps middleware and wrap each side effect in Step. A step that succeeded is
// not run again when the job is retried: its result, stored in Redis under the job's jid,
// is returned instead. The record is deleted when the job succeeds or dies.
//
// The record's key is "ferry:steps:<jid>". A jid is payload content, and no payload value
// may choose a key outside its keyspace or make a key of any size: a jid that is not 1 to
// 64 letters, digits, '-' and '_' (Sidekiq's and Ferry's are 24 hex digits) is hashed, and
// its record lives at "ferry:steps:h:<hex SHA-256 of the jid>" (StepStore.Key). Step names
// are hash fields inside the record, chosen by your code, never keys.
//
//	steps := middleware.Steps(rdb, nil)
//	srv := sidekiq.NewServer(rdb, &sidekiq.Config{OnDeath: steps.OnDeath})
//	srv.Use(steps)
//	...
//	charge, err := middleware.Step(ctx, "charge", func(ctx context.Context) (Charge, error) { … })
//	_, err = middleware.Step(ctx, "invoice", func(ctx context.Context) (bool, error) { … })
//
// # ActiveJob
//
// ActiveJob handles jobs a Rails app enqueues with perform_later: the arguments arrive
// decoded as Rails 6.1 encodes them (keyword arguments apart, and Symbol, GlobalID,
// time.Time, Date, Duration, Decimal, Module values typed by package activejob).
// PushActiveJob goes the other way: Go enqueues a job that a Rails process runs with its
// ActiveJob class.
//
// # Logging
//
// Logging logs one line when a job starts and one when it ends (jid, class, queue,
// duration, outcome, error) on the *zap.Logger you pass, and counts outcomes. Handlers log
// through Logger(ctx), which carries the job's fields. Install it first:
//
//	srv.Use(middleware.Logging(logger), steps)
//
// # Transaction guard
//
// A job pushed inside a database transaction may run before the commit, or after a
// rollback. TxGuard is a push middleware that refuses (GuardError), reports (GuardWarn,
// GuardStderr) or allows (GuardDisabled) such pushes, like Ruby's
// sidekiq-transaction_guard. It knows a transaction is open when the context says so:
// mark it with WithinTransaction or WithTx where your code begins one, and use the outbox
// (outbox.Push) to enqueue in the transaction instead.
package middleware
