package middleware_test

import (
	"context"
	"testing"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// TestTrackSkips: a run middleware outside this package sees a Skip made further down the
// chain, alone or with Logging on either side of it, and Logging still counts the skip.
func TestTrackSkips(t *testing.T) {
	t.Parallel()
	job := &sidekiq.Job{Class: "ReindexWorker", JID: "j1", Queue: "default"}
	handler := func(skip bool) func(context.Context) error {
		return func(ctx context.Context) error {
			if skip {
				return middleware.Skip(ctx, "gone")
			}
			return nil
		}
	}
	// tracker is the shape of a metrics middleware: track, run, read.
	tracker := func(seen *bool) sidekiq.RunFunc {
		return func(ctx context.Context, _ *sidekiq.Job, next func(context.Context) error) error {
			ctx = middleware.TrackSkips(ctx)
			err := next(ctx)
			*seen = middleware.Skipped(ctx)
			return err
		}
	}
	for _, tc := range []struct {
		name  string
		order string // "alone", "logging-outside", "logging-inside"
		skip  bool
	}{
		{"alone, skipped", "alone", true},
		{"alone, ran", "alone", false},
		{"logging outside, skipped", "logging-outside", true},
		{"logging inside, skipped", "logging-inside", true},
		{"logging inside, ran", "logging-inside", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen bool
			logging := middleware.Logging(nil)
			tr := tracker(&seen)
			ctx := context.Background()
			var err error
			switch tc.order {
			case "alone":
				err = tr(ctx, job, handler(tc.skip))
			case "logging-outside":
				err = logging.InterceptRun(ctx, job, func(ctx context.Context) error { return tr(ctx, job, handler(tc.skip)) })
			case "logging-inside":
				err = tr(ctx, job, func(ctx context.Context) error { return logging.InterceptRun(ctx, job, handler(tc.skip)) })
			}
			if err != nil {
				t.Fatal(err)
			}
			if seen != tc.skip {
				t.Errorf("Skipped = %v, want %v", seen, tc.skip)
			}
			if tc.order != "alone" {
				if want := map[bool]int64{true: 1, false: 0}[tc.skip]; logging.Skipped() != want {
					t.Errorf("Logging counted %d skips, want %d", logging.Skipped(), want)
				}
			}
		})
	}
	if middleware.Skipped(context.Background()) {
		t.Error("Skipped on a context that never tracked skips")
	}
}
