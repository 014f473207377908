package sidekiq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/sidekiq"
)

// exampleRedis starts an in-process Redis for an example. Programs pass their own client.
func exampleRedis() (*redis.Client, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { _ = rdb.Close(); mr.Close() }
}

func ExampleClient_Push() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()

	client := sidekiq.NewClient(rdb, nil)
	jid, err := client.Push(ctx, "HardWorker", []any{"bob", 5}, sidekiq.Queue("critical"), sidekiq.Retry(3))
	if err != nil {
		panic(err)
	}

	// Ruby Sidekiq (or a Ferry server) working "critical" now finds the job.
	raw, _ := rdb.RPop(ctx, "queue:critical").Result()
	job, _ := sidekiq.ParseJobString(raw)
	fmt.Println(job.JID == jid, job.Class, job.Queue, string(job.Args), job.Retry)
	// Output: true HardWorker critical ["bob",5] 3
}

func ExampleClient_PushBulk() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()

	client := sidekiq.NewClient(rdb, nil)
	jids, err := client.PushBulk(ctx, "IndexWorker", [][]any{{1}, {2}, {3}})
	if err != nil {
		panic(err)
	}
	n, _ := rdb.LLen(ctx, "queue:default").Result()
	fmt.Println(len(jids), "jids,", n, "jobs in queue:default")
	// Output: 3 jids, 3 jobs in queue:default
}

func ExampleServer() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()

	ran := make(chan string, 1)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1})
	srv.Handle("HardWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		var name string
		var count int
		if err := job.DecodeArgs(&name, &count); err != nil {
			return err
		}
		ran <- fmt.Sprintf("%s %d", name, count)
		return nil
	}))
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}

	if _, err := sidekiq.NewClient(rdb, nil).Push(ctx, "HardWorker", []any{"bob", 5}); err != nil {
		panic(err)
	}
	fmt.Println("ran:", <-ran)

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Stop(stopCtx); err != nil {
		panic(err)
	}
	// Output: ran: bob 5
}
