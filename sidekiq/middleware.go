package sidekiq

import "context"

// Middleware is the common type of everything passed to Client.Use and Server.Use. A value
// acts on the push side by implementing PushMiddleware, on the run side by implementing
// RunMiddleware, or on both (a unique lock must do both, and registering it once installs
// both halves). Embed MiddlewareDefaults to satisfy this interface.
type Middleware interface {
	IsMiddleware() bool
}

// MiddlewareDefaults is embedded in middleware types to make them a Middleware.
type MiddlewareDefaults struct{}

// IsMiddleware returns true.
func (MiddlewareDefaults) IsMiddleware() bool { return true }

// PushMiddleware wraps every push made by a Client (Sidekiq's client middleware). It may
// change the job, call next to continue, or return without calling next to stop the push;
// Push then reports ErrPushStopped (or the error the middleware returned) and writes
// nothing.
type PushMiddleware interface {
	Middleware
	InterceptPush(ctx context.Context, job *Job, next func(context.Context) error) error
}

// RunMiddleware wraps every job a Server runs (Sidekiq's server middleware). It calls next
// to run the rest of the chain and the handler; returning an error fails the job.
type RunMiddleware interface {
	Middleware
	InterceptRun(ctx context.Context, job *Job, next func(context.Context) error) error
}

// PushFunc adapts a function to a PushMiddleware.
type PushFunc func(ctx context.Context, job *Job, next func(context.Context) error) error

// IsMiddleware returns true.
func (PushFunc) IsMiddleware() bool { return true }

// InterceptPush calls f.
func (f PushFunc) InterceptPush(ctx context.Context, job *Job, next func(context.Context) error) error {
	return f(ctx, job, next)
}

// RunFunc adapts a function to a RunMiddleware.
type RunFunc func(ctx context.Context, job *Job, next func(context.Context) error) error

// IsMiddleware returns true.
func (RunFunc) IsMiddleware() bool { return true }

// InterceptRun calls f.
func (f RunFunc) InterceptRun(ctx context.Context, job *Job, next func(context.Context) error) error {
	return f(ctx, job, next)
}

// splitMiddleware sorts middleware into the push and run sides. A value that is neither is
// a programming error and panics at registration, not at the first job.
func splitMiddleware(mws []Middleware) (push []PushMiddleware, run []RunMiddleware) {
	for _, m := range mws {
		p, isPush := m.(PushMiddleware)
		r, isRun := m.(RunMiddleware)
		if !isPush && !isRun {
			panic("sidekiq: Use: middleware implements neither PushMiddleware nor RunMiddleware")
		}
		if isPush {
			push = append(push, p)
		}
		if isRun {
			run = append(run, r)
		}
	}
	return push, run
}

// runChain runs the middleware around last, each calling the next through call.
func runChain[M any](ctx context.Context, mws []M, call func(M, context.Context, func(context.Context) error) error, last func(context.Context) error) error {
	var step func(i int) func(context.Context) error
	step = func(i int) func(context.Context) error {
		if i == len(mws) {
			return last
		}
		return func(ctx context.Context) error { return call(mws[i], ctx, step(i+1)) }
	}
	return step(0)(ctx)
}

// runPushChain runs push middleware around last.
func runPushChain(ctx context.Context, mws []PushMiddleware, job *Job, last func(context.Context) error) error {
	return runChain(ctx, mws, func(m PushMiddleware, ctx context.Context, next func(context.Context) error) error {
		return m.InterceptPush(ctx, job, next)
	}, last)
}

// runRunChain runs run middleware around last.
func runRunChain(ctx context.Context, mws []RunMiddleware, job *Job, last func(context.Context) error) error {
	return runChain(ctx, mws, func(m RunMiddleware, ctx context.Context, next func(context.Context) error) error {
		return m.InterceptRun(ctx, job, next)
	}, last)
}
