package middleware

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// Outcomes written in the "outcome" field of the end line of Logging.
const (
	OutcomeDone        = "done"        // the handler returned nil
	OutcomeSkipped     = "skipped"     // the job was no longer needed (see Needed and Skip)
	OutcomeFailed      = "failed"      // the handler failed; the job will be retried or buried
	OutcomeDiscarded   = "discarded"   // the handler failed with sidekiq.Discard: no retries
	OutcomeRescheduled = "rescheduled" // the handler returned sidekiq.RetryIn
)

// LogMiddleware is the run middleware made by Logging. It logs one line when a job starts
// and one when it ends, and counts the outcomes. It is safe for concurrent use.
type LogMiddleware struct {
	sidekiq.MiddlewareDefaults
	log *zap.Logger

	done, skipped, failed atomic.Int64
}

// Logging returns a run middleware that logs every job on log (zap.NewNop() when nil).
//
// The start line is "job start"; the end line is "job end" with an "outcome" field (one of
// the Outcome constants), "duration" and, on failure, "error". Both carry "jid", "class"
// (the handler name: the ActiveJob class for ActiveJob jobs) and "queue". Failures are
// logged at Warn, the rest at Info.
//
// Inside the handler, Logger(ctx) returns the job's logger: log with the job's fields
// attached. Install Logging first (outermost) so that the other middleware of this package
// log through it too.
func Logging(log *zap.Logger) *LogMiddleware {
	if log == nil {
		log = zap.NewNop()
	}
	return &LogMiddleware{log: log}
}

// InterceptRun implements sidekiq.RunMiddleware.
func (m *LogMiddleware) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	l := m.log.With(logcap.String("jid", job.JID), logcap.String("class", job.HandlerName()), logcap.String("queue", job.Queue))
	ctx = context.WithValue(ctx, loggerKey{}, l)
	ctx, st := withRunState(ctx)
	l.Info("job start")
	began := time.Now()
	err := next(ctx)
	d := time.Since(began)
	outcome := outcomeOf(err, st.skipped.Load())
	switch outcome {
	case OutcomeDone:
		m.done.Add(1)
	case OutcomeSkipped:
		m.skipped.Add(1)
	case OutcomeFailed, OutcomeDiscarded:
		m.failed.Add(1)
	}
	if err != nil && outcome != OutcomeRescheduled {
		l.Warn("job end", zap.String("outcome", outcome), zap.Duration("duration", d), logcap.Error(err))
	} else {
		l.Info("job end", zap.String("outcome", outcome), zap.Duration("duration", d), logcap.Error(err))
	}
	return err
}

func outcomeOf(err error, skipped bool) string {
	switch {
	case err == nil && skipped:
		return OutcomeSkipped
	case err == nil:
		return OutcomeDone
	case errors.Is(err, sidekiq.ErrRetryIn):
		return OutcomeRescheduled
	case errors.Is(err, sidekiq.ErrDiscard):
		return OutcomeDiscarded
	}
	return OutcomeFailed
}

// Done returns how many jobs ended with the handler returning nil, skipped ones excluded.
func (m *LogMiddleware) Done() int64 { return m.done.Load() }

// Skipped returns how many jobs were skipped as no longer needed.
func (m *LogMiddleware) Skipped() int64 { return m.skipped.Load() }

// Failed returns how many jobs failed (discarded ones included, rescheduled ones not).
func (m *LogMiddleware) Failed() int64 { return m.failed.Load() }

type loggerKey struct{}

type runStateKey struct{}

// runState is what the middleware of this package learn about one run.
type runState struct {
	skipped atomic.Bool
}

// Logger returns the logger of the job running in ctx, with its jid, class and queue
// attached, as installed by Logging or WithLogger. Without one it returns a no-op logger,
// never nil.
func Logger(ctx context.Context) *zap.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*zap.Logger); ok {
		return l
	}
	return zap.NewNop()
}

// WithLogger returns a context whose Logger is l: for handlers run outside a Server (in
// tests) or under a logging setup of your own.
func WithLogger(ctx context.Context, l *zap.Logger) context.Context {
	if l == nil {
		l = zap.NewNop()
	}
	return context.WithValue(ctx, loggerKey{}, l)
}
