package middleware

import "context"

// TrackSkips returns a context in which Skip, called further down the chain (by a Needed
// check or a handler), records the skip, so that Skipped(ctx) reports it once next returns.
// Run middleware outside this package use it to count skipped jobs (a metrics exporter,
// say):
//
//	ctx = middleware.TrackSkips(ctx)
//	err := next(ctx)
//	if err == nil && middleware.Skipped(ctx) { skipped.Inc() }
//
// When ctx already tracks skips (Logging or another TrackSkips is further out), it is
// returned unchanged and both see the same record, whatever the order of the middleware.
func TrackSkips(ctx context.Context) context.Context {
	ctx, _ = withRunState(ctx)
	return ctx
}

// Skipped reports whether Skip was called for the job running in ctx. It is false unless
// ctx comes from TrackSkips or from inside Logging.
func Skipped(ctx context.Context) bool {
	st, ok := ctx.Value(runStateKey{}).(*runState)
	return ok && st.skipped.Load()
}

// withRunState returns ctx with a run state, reusing the one ctx already carries.
func withRunState(ctx context.Context) (context.Context, *runState) {
	if st, ok := ctx.Value(runStateKey{}).(*runState); ok {
		return ctx, st
	}
	st := &runState{}
	return context.WithValue(ctx, runStateKey{}, st), st
}
