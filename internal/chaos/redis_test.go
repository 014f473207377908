package chaos

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/sidekiq"
)

// TestRedisKillKeepsJobs: jobs pushed before a SIGKILL of Redis are still
// queued after the restart (appendfsync always).
func TestRedisKillKeepsJobs(t *testing.T) {
	s := redisproc.Start(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer rdb.Close()

	c := sidekiq.NewClient(rdb, nil)
	args := make([][]any, 50)
	for i := range args {
		args[i] = []any{i}
	}
	jids, err := c.PushBulk(ctx, "ChaosOK", args)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	s.Restart()
	n, err := rdb.LLen(ctx, "queue:default").Result()
	if err != nil {
		t.Fatalf("llen after restart: %v", err)
	}
	if n != int64(len(jids)) {
		t.Fatalf("queue:default has %d jobs after kill -9 and restart, want %d", n, len(jids))
	}
}
