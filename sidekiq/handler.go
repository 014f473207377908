package sidekiq

import (
	"context"
	"time"
)

// Handler runs jobs of one class. Perform's ctx is cancelled when the server's shutdown
// deadline passes; a handler that returns ctx.Err() then is retried later (its job is
// pushed back to its queue, not failed).
type Handler interface {
	Perform(ctx context.Context, job *Job) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, job *Job) error

// Perform calls f.
func (f HandlerFunc) Perform(ctx context.Context, job *Job) error { return f(ctx, job) }

// RetryDelayer is implemented by handlers that choose their own wait before a retry
// (Sidekiq's sidekiq_retry_in). count is 0 after the first failure. A delay ≤ 0 falls back
// to Config.RetryDelay.
type RetryDelayer interface {
	RetryDelay(count int, err error, job *Job) time.Duration
}

// MaxRetrier is implemented by handlers whose default number of retries (for jobs with
// "retry": true or no "retry") differs from Config.MaxRetries.
type MaxRetrier interface {
	MaxRetries() int
}

// handlerEntry is a registered handler with the middleware that wraps it alone.
type handlerEntry struct {
	h   Handler
	mws []RunMiddleware
}

// HandleOption changes one registration.
type HandleOption interface{ applyHandle(*handlerEntry) }

type handleOptionFunc func(*handlerEntry)

func (f handleOptionFunc) applyHandle(e *handlerEntry) { f(e) }

// WithMiddleware wraps only this handler in the given run middleware, inside the server's
// global middleware.
func WithMiddleware(mws ...RunMiddleware) HandleOption {
	return handleOptionFunc(func(e *handlerEntry) { e.mws = append(e.mws, mws...) })
}
