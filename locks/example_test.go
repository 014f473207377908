package locks_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

func ExampleQueueLock() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	lock := locks.QueueLock(rdb, locks.Inputs("user_id"), locks.Classes("ReportWorker"))

	client := sidekiq.NewClient(rdb, nil)
	client.Use(lock)
	srv := sidekiq.NewServer(rdb, nil)
	srv.Use(lock)

	jid, err := client.Push(ctx, "ReportWorker", []any{map[string]any{"user_id": 7}})
	if errors.Is(err, sidekiq.ErrPushStopped) {
		fmt.Println("an identical report is already waiting:", jid)
	}
}
