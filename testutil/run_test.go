package testutil_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestRunThroughMiddleware: Run passes the job through the middleware to the handler, as a
// Server does: named inputs decoded, a panic returned as a *PanicError, a bad input as a
// Discard.
func TestRunThroughMiddleware(t *testing.T) {
	t.Parallel()
	type in struct {
		UserID int `json:"user_id" validate:"required"`
	}
	var got int
	h := middleware.Inputs(func(_ context.Context, _ *sidekiq.Job, v in) error { got = v.UserID; return nil })
	job, err := testutil.NewJob("ReportWorker", map[string]any{"user_id": 7})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	mw := sidekiq.RunFunc(func(ctx context.Context, j *sidekiq.Job, next func(context.Context) error) error {
		if cur, ok := sidekiq.JobFromContext(ctx); !ok || cur != j {
			t.Error("the job is not in the context")
		}
		order = append(order, "mw")
		return next(ctx)
	})
	if err := testutil.Run(context.Background(), h, job, mw); err != nil || got != 7 || len(order) != 1 {
		t.Fatalf("Run = %v, user %d, middleware calls %v", err, got, order)
	}
	bad, _ := testutil.NewJob("ReportWorker", "not an object")
	if err := testutil.Run(context.Background(), h, bad); !errors.Is(err, sidekiq.ErrDiscard) {
		t.Fatalf("bad inputs: %v, want a Discard", err)
	}
	boom := sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { panic("boom") })
	var pe *sidekiq.PanicError
	if err := testutil.Run(context.Background(), boom, job); !errors.As(err, &pe) {
		t.Fatalf("panic: %v, want a *PanicError", err)
	}
}
