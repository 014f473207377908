package sidekiq_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

func TestPushDelaySeenByMiddleware(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Clock: testutil.NewFakeClock(t0)})
	var seen []time.Duration
	c.Use(sidekiq.PushFunc(func(ctx context.Context, _ *sidekiq.Job, next func(context.Context) error) error {
		seen = append(seen, sidekiq.PushDelay(ctx))
		return next(ctx)
	}))
	ctx := context.Background()
	tests := []struct {
		opt  sidekiq.PushOption
		want time.Duration
	}{
		{sidekiq.Queue("default"), 0},
		{sidekiq.In(10 * time.Minute), 10 * time.Minute},
		{sidekiq.At(t0.Add(90 * time.Second)), 90 * time.Second},
		{sidekiq.At(t0.Add(-time.Minute)), 0},
	}
	for _, tt := range tests {
		seen = seen[:0]
		if _, err := c.Push(ctx, "W", nil, tt.opt); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PushBulk(ctx, "W", [][]any{{1}}, tt.opt); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || seen[0] != tt.want || seen[1] != tt.want {
			t.Errorf("PushDelay seen %v, want %v for Push and PushBulk", seen, tt.want)
		}
	}
}
