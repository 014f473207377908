package sidekiq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestOnHandlerStart: a start hook added by a run middleware runs just before the handler
// (after later middleware), not when a later middleware reschedules the job, and its error
// fails the job without running the handler.
func TestOnHandlerStart(t *testing.T) {
	t.Parallel()
	type outcome struct {
		hookRan, handlerRan bool
		err                 error
	}
	cases := []struct {
		name      string
		later     func(ctx context.Context, next func(context.Context) error) error
		hookErr   error
		want      outcome
		wantErrIs error
	}{
		{name: "runs before the handler", later: func(ctx context.Context, next func(context.Context) error) error { return next(ctx) },
			want: outcome{hookRan: true, handlerRan: true}},
		{name: "not run when a later middleware reschedules", later: func(context.Context, func(context.Context) error) error {
			return sidekiq.RetryIn(time.Hour, nil)
		}, want: outcome{}, wantErrIs: sidekiq.ErrRetryIn},
		{name: "hook error fails the job", later: func(ctx context.Context, next func(context.Context) error) error { return next(ctx) },
			hookErr: errors.New("boom"), want: outcome{hookRan: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb, _ := testutil.NewEmbeddedRedis(t)
			results := make(chan outcome, 1)
			var o outcome
			srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1, FetchTimeout: 50 * time.Millisecond})
			srv.Use(sidekiq.RunFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
				ctx = sidekiq.OnHandlerStart(ctx, func(context.Context) error {
					o.hookRan = true
					return tc.hookErr
				})
				err := next(ctx)
				o.err = err
				results <- o
				return err
			}))
			srv.Use(sidekiq.RunFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
				return tc.later(ctx, next)
			}))
			srv.Handle("Hooked", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
				if !o.hookRan {
					return errors.New("handler ran before the start hook")
				}
				o.handlerRan = true
				return nil
			}))
			if _, err := sidekiq.NewClient(rdb, nil).Push(context.Background(), "Hooked", nil); err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Stop(ctx)
			}()
			var got outcome
			select {
			case got = <-results:
			case <-time.After(10 * time.Second):
				t.Fatal("job did not run")
			}
			if got.hookRan != tc.want.hookRan || got.handlerRan != tc.want.handlerRan {
				t.Fatalf("hook ran %v, handler ran %v; want %v, %v (err %v)", got.hookRan, got.handlerRan, tc.want.hookRan, tc.want.handlerRan, got.err)
			}
			switch {
			case tc.hookErr != nil && !errors.Is(got.err, tc.hookErr):
				t.Fatalf("job error %v, want the hook's %v", got.err, tc.hookErr)
			case tc.wantErrIs != nil && !errors.Is(got.err, tc.wantErrIs):
				t.Fatalf("job error %v, want %v", got.err, tc.wantErrIs)
			case tc.hookErr == nil && tc.wantErrIs == nil && got.err != nil:
				t.Fatalf("job error %v", got.err)
			}
		})
	}
}
