package sidekiq

import "context"

// Run middleware that must act only once the handler really starts (a unique queue lock
// released "at start", which must stay held when a later middleware reschedules the job
// with RetryIn) registers a start hook instead of acting at its own place in the chain.

type startHooksKey struct{}

// OnHandlerStart returns a context that makes the Server call fn just before the job's
// handler runs, after every run middleware has let the job through. Call it from a run
// middleware and pass the returned context to next. Hooks run once, in the order they were
// added, with the handler's context; the first error is returned as the job's error and the
// handler does not run. If the chain returns before the handler starts (a middleware fails,
// stops, or reschedules the job), the hooks are not called: the middleware that added one
// sees that when next returns and handles it itself.
func OnHandlerStart(ctx context.Context, fn func(context.Context) error) context.Context {
	prev, _ := ctx.Value(startHooksKey{}).([]func(context.Context) error)
	all := make([]func(context.Context) error, 0, len(prev)+1)
	all = append(append(all, prev...), fn)
	return context.WithValue(ctx, startHooksKey{}, all)
}

// runStartHooks calls the start hooks in ctx (see OnHandlerStart), stopping at the first
// error. The Server (and Perform) call it just before every handler.
func runStartHooks(ctx context.Context) error {
	hooks, _ := ctx.Value(startHooksKey{}).([]func(context.Context) error)
	for _, h := range hooks {
		if err := h(ctx); err != nil {
			return err
		}
	}
	return nil
}
