package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestHandleOptionsSurviveWrapping: per-class retry settings are options of the
// registration, so a handler wrapped by Inputs or ActiveJob keeps them (they used to be
// methods of the handler value, which the wrapper hid).
func TestHandleOptionsSurviveWrapping(t *testing.T) {
	t.Parallel()
	type in struct {
		ID int `json:"id"`
	}
	fail := errors.New("always")
	tests := []struct {
		name    string
		handler sidekiq.Handler
		push    func(c *sidekiq.Client) error
	}{
		{"Inputs", middleware.Inputs(func(context.Context, *sidekiq.Job, in) error { return fail }),
			func(c *sidekiq.Client) error {
				_, err := c.Push(context.Background(), "W", []any{map[string]any{"id": 1}})
				return err
			}},
		{"ActiveJob", middleware.ActiveJob(func(context.Context, *sidekiq.Job, middleware.AJArgs) error { return fail }),
			func(c *sidekiq.Client) error {
				_, err := middleware.PushActiveJob(context.Background(), c, "W", "default", []any{1})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, _ := testutil.NewEmbeddedRedis(t)
			delays := make(chan int, 8)
			srv := sidekiq.NewServer(rdb, &sidekiq.Config{PollInterval: 20 * time.Millisecond})
			srv.Handle("W", tt.handler,
				sidekiq.WithMaxRetries(2),
				sidekiq.WithRetryDelay(func(count int, _ error, _ *sidekiq.Job) time.Duration {
					delays <- count
					return time.Millisecond
				}))
			if err := tt.push(srv.Client()); err != nil {
				t.Fatal(err)
			}
			startServer(t, srv)
			// WithMaxRetries(2): two retries with the class's delay, then the dead set
			// (the server default of 25 would retry on).
			waitFor(t, "the job in the dead set", func() bool { return zcard(t, rdb, "dead") == 1 })
			if got := []int{receive(t, "first delay", delays), receive(t, "second delay", delays)}; got[0] != 0 || got[1] != 1 {
				t.Fatalf("delays asked for counts %v, want [0 1]", got)
			}
		})
	}
}
