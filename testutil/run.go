package testutil

import (
	"context"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
)

// NewJob builds a job of class with args as Client.Push would write it (a new jid, queue
// "default", retry true, created_at and enqueued_at now), for running a handler in a test
// without Redis.
func NewJob(class string, args ...any) (*sidekiq.Job, error) {
	raw, err := sidekiq.EncodeArgs(args)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &sidekiq.Job{
		Class: class, JID: sidekiq.NewJID(), Queue: "default", Args: raw, Retry: sidekiq.RetryTrue(),
		CreatedAt: now, EnqueuedAt: now,
	}, nil
}

// Run runs h for job as a Server would: through mws (the first is outermost) and the start
// hooks they add, with the job available to sidekiq.JobFromContext and a panic returned as
// a *sidekiq.PanicError. It returns what the chain returned; nothing is written to Redis.
// Pass the same middleware the Server uses to test a handler with its inputs decoding,
// locks or logging:
//
//	job, _ := testutil.NewJob("ReportWorker", map[string]any{"user_id": 7})
//	err := testutil.Run(ctx, middleware.Inputs(report), job, middleware.Logging(logger))
func Run(ctx context.Context, h sidekiq.Handler, job *sidekiq.Job, mws ...sidekiq.RunMiddleware) error {
	return sidekiq.Perform(ctx, h, job, mws...)
}
