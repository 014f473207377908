package locks_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// backends runs f against the embedded Redis and the real one.
var backends = testsuite.Backends

// runServer starts a server with the lock installed and stops it when the test ends.
func runServer(t *testing.T, rdb redis.UniversalClient, ns string, lock sidekiq.Middleware, class string, h sidekiq.HandlerFunc) {
	t.Helper()
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2, Namespace: ns, FetchTimeout: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	srv.Use(lock)
	srv.Handle(class, h)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

// receive waits for a value from ch.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
