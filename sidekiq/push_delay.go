package sidekiq

import (
	"context"
	"time"
)

type pushDelayKey struct{}

// PushDelay returns, inside a push middleware, how long the job being pushed waits in the
// schedule set before it is due, by the Client's clock: 0 for a job that goes straight to
// its queue. A guard whose TTL must cover the wait (a unique lock) adds it.
func PushDelay(ctx context.Context) time.Duration {
	d, _ := ctx.Value(pushDelayKey{}).(time.Duration)
	return d
}

// withPushDelay records the delay of a push whose job is due at runAt (zero: now).
func withPushDelay(ctx context.Context, runAt, now time.Time) context.Context {
	if runAt.IsZero() {
		return ctx
	}
	return context.WithValue(ctx, pushDelayKey{}, runAt.Sub(now))
}
