package bus

import (
	"context"
	"fmt"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// Handler runs a subscription's events. A returned error fails the subscriber's job, which
// is retried as any Sidekiq job (its "retry" is true: 25 retries by default, then the dead
// set); the other subscribers of the event have jobs of their own and are not affected.
// The control-flow errors of package sidekiq work here too: sidekiq.Discard sends the job
// to the dead set at once, sidekiq.RetryIn reschedules it without using a retry.
type Handler interface {
	HandleEvent(ctx context.Context, ev *Event) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, ev *Event) error

// HandleEvent calls f.
func (f HandlerFunc) HandleEvent(ctx context.Context, ev *Event) error { return f(ctx, ev) }

// InputsFunc is a subscriber that receives the event's attributes decoded into T.
type InputsFunc[T any] func(ctx context.Context, ev *Event, in T) error

// Inputs returns a Handler that decodes the event's attributes into a T with the rules of
// middleware.Inputs (json tags, `default:"…"` tags or a Defaults method for missing keys,
// unknown keys ignored, then a Validate method), and runs fn with it. An event that does
// not decode or validate goes to the dead set at once (sidekiq.Discard with a
// *middleware.InputError), never through retries. When T implements middleware.Neededer,
// Needed runs first and an event no longer needed is skipped (middleware.Skip).
//
//	type SignupInputs struct {
//		UserID int64  `json:"user_id"`
//		Plan   string `json:"plan" default:"free"`
//	}
//	app.Subscribe("user_created", bus.Inputs(func(ctx context.Context, ev *bus.Event, in SignupInputs) error { … }))
func Inputs[T any](fn InputsFunc[T]) Handler {
	return HandlerFunc(func(ctx context.Context, ev *Event) error {
		in, err := middleware.DecodeInputs[T](ev.job)
		if err != nil {
			return sidekiq.Discard(err)
		}
		var n middleware.Neededer
		if v, ok := any(in).(middleware.Neededer); ok {
			n = v
		} else if v, ok := any(&in).(middleware.Neededer); ok {
			n = v
		}
		if n != nil {
			needed, err := n.Needed(ctx, ev.job)
			if err != nil {
				return fmt.Errorf("%s: checking whether the event is still needed: %w", ev.job.Class, err)
			}
			if !needed {
				return middleware.Skip(ctx, "no longer needed")
			}
		}
		return fn(ctx, ev, in)
	})
}
