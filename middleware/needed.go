package middleware

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/sidekiq"
)

// Neededer is implemented by handlers, or by the inputs type of an Inputs handler, that
// can tell whether a job still has work to do: the record it names may be gone, or the work
// done by an earlier delivery of the same job. Needed runs before the handler. It should
// read the source of truth (the database), not the job's arguments alone.
//
// Needed returning false skips the job: the handler does not run, the job completes
// successfully (it counts as processed in Sidekiq's stats and leaves nothing in the retry
// or dead set), and it is logged and counted as skipped (see Logging). An error fails the
// job as a handler error would, so it is retried.
type Neededer interface {
	Needed(ctx context.Context, job *sidekiq.Job) (bool, error)
}

// CheckNeeded wraps h so that, when h implements Neededer, its Needed method runs first
// and a job no longer needed is skipped. A handler without a Needed method runs as before.
//
//	srv.Handle("ReindexWorker", middleware.CheckNeeded(&ReindexWorker{db: db}))
func CheckNeeded(h sidekiq.Handler) sidekiq.Handler {
	n, ok := h.(Neededer)
	if !ok {
		return h
	}
	return neededHandler{h: h, n: n}
}

type neededHandler struct {
	h sidekiq.Handler
	n Neededer
}

func (nh neededHandler) Perform(ctx context.Context, job *sidekiq.Job) error {
	ok, err := nh.n.Needed(ctx, job)
	if err != nil {
		return fmt.Errorf("%s: checking whether the job is still needed: %w", job.HandlerName(), err)
	}
	if !ok {
		return Skip(ctx, "no longer needed")
	}
	return nh.h.Perform(ctx, job)
}

// Skip records that the job running in ctx was skipped because it is no longer needed, and
// returns nil, for a handler to return: the job completes without being retried, is logged
// with reason, and counts as skipped in Logging's counters and end line. Needed checks
// call it for you; call it yourself when a handler finds out later that it has nothing to
// do.
func Skip(ctx context.Context, reason string) error {
	if st, ok := ctx.Value(runStateKey{}).(*runState); ok {
		st.skipped.Store(true)
	}
	Logger(ctx).Info("job skipped", zap.String("reason", reason))
	return nil
}
