package locks_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
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

func ExampleWorkerLock() {
	ctx := context.Background()
	mr := miniredis.NewMiniRedis() // stands in for your Redis
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	// One sync per account at a time; a contended job waits 1 s, 2 s, 4 s... up to 1 min.
	wlock := locks.WorkerLock(rdb, locks.Inputs("account_id"), locks.Classes("SyncAccount"),
		locks.Lease(30*time.Second), locks.Backoff(time.Second, time.Minute))
	srv := sidekiq.NewServer(rdb, nil)
	srv.Use(wlock)

	// What the server does with two jobs for account 42 that start together:
	first, _ := sidekiq.ParseJobString(`{"class":"SyncAccount","jid":"a1","queue":"default","args":[{"account_id":42}]}`)
	second, _ := sidekiq.ParseJobString(`{"class":"SyncAccount","jid":"b2","queue":"default","args":[{"account_id":42}]}`)
	_ = wlock.InterceptRun(ctx, first, func(ctx context.Context) error {
		err := wlock.InterceptRun(ctx, second, func(context.Context) error { return nil })
		var later *sidekiq.RetryInError
		if errors.As(err, &later) && errors.Is(err, locks.ErrWorkerLockHeld) {
			fmt.Println("b2 rescheduled, no retry used; waits:", string(second.Extra[locks.WaitsKey]))
		}
		return nil
	})
	// Output: b2 rescheduled, no retry used; waits: 1
}
