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

// handlerOptions are the per-class settings of one registration (Server.Handle).
type handlerOptions struct {
	mws        []RunMiddleware
	retryDelay func(count int, err error, job *Job) time.Duration // nil: the server's
	maxRetries int                                                // -1: the server's
}

// handlerEntry is a registered handler with its options.
type handlerEntry struct {
	h    Handler
	opts handlerOptions
}

// HandleOption changes one registration. Options belong to the registration, not to the
// handler value, so they hold whatever the handler is wrapped in (middleware.Inputs,
// middleware.ActiveJob, ...).
type HandleOption interface{ applyHandle(*handlerOptions) }

type handleOptionFunc func(*handlerOptions)

func (f handleOptionFunc) applyHandle(o *handlerOptions) { f(o) }

// WithMiddleware wraps only this handler in the given run middleware, inside the server's
// global middleware.
func WithMiddleware(mws ...RunMiddleware) HandleOption {
	return handleOptionFunc(func(o *handlerOptions) { o.mws = append(o.mws, mws...) })
}

// WithRetryDelay sets the wait before each retry of this class (Sidekiq's
// sidekiq_retry_in): f gets the retry count (0 after the first failure), the error and the
// job. A result ≤ 0 falls back to Config.RetryDelay. Default: Config.RetryDelay.
func WithRetryDelay(f func(count int, err error, job *Job) time.Duration) HandleOption {
	return handleOptionFunc(func(o *handlerOptions) { o.retryDelay = f })
}

// WithMaxRetries sets how many times a job of this class is retried when its payload's
// "retry" is true or absent (a "retry": N in the payload still wins, as in Sidekiq).
// Default: Config.MaxRetries.
func WithMaxRetries(n int) HandleOption {
	return handleOptionFunc(func(o *handlerOptions) { o.maxRetries = max(n, 0) })
}
