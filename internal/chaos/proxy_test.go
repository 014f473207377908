package chaos

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/faultproxy"
	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/sidekiq"
)

// TestPushThroughCutProxy: a Client behind the fault proxy keeps pushing
// after every connection is cut, and every acknowledged push is in Redis.
func TestPushThroughCutProxy(t *testing.T) {
	s := redisproc.Start(t)
	p, err := faultproxy.Start(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	c := sidekiq.NewClient(rdb, nil)

	acked, cuts := 0, 0
	for i := 0; i < 20; i++ {
		if i%5 == 0 {
			cuts += p.CutAll()
		}
		if _, err := c.Push(ctx, "ChaosOK", []any{i}); err == nil {
			acked++
		}
	}
	if cuts == 0 {
		t.Fatal("no connection was cut")
	}
	direct := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer direct.Close()
	n, err := direct.LLen(ctx, "queue:default").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(acked) {
		t.Fatalf("lost acknowledged pushes: %d in queue, %d acked", n, acked)
	}
	if acked == 0 {
		t.Fatal("no push succeeded through the proxy")
	}
	t.Logf("pushes acked %d/20, connections cut %d, queued %d", acked, cuts, n)
}
