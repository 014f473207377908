package api_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/sidekiq"
)

// Retry every job of the retry set whose error mentions a timeout, as an operator would
// after fixing a flaky dependency.
func Example() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	// Two failed jobs, as Sidekiq's retry handler leaves them.
	for i, msg := range []string{"Net::ReadTimeout", "undefined method `name' for nil"} {
		job := fmt.Sprintf(`{"class":"SyncJob","args":[%d],"jid":"jid%d","queue":"default","retry":true,`+
			`"retry_count":0,"error_class":"RuntimeError","error_message":%q,"failed_at":1700000000.5}`, i, i, msg)
		rdb.ZAdd(ctx, "retry", redis.Z{Score: 1700000100.5 + float64(i), Member: job})
	}

	sk := api.New(rdb, nil)
	res, err := sk.Retry(ctx, api.RetrySet, &api.Filter{Error: "timeout"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("retried %d of %d matching\n", res.Done, res.Matched)

	st, _ := sk.Stats(ctx)
	fmt.Printf("queued %d, still in retry %d\n", st.Enqueued, st.Retries)

	queued, _ := rdb.LIndex(ctx, "queue:default", 0).Result()
	job, _ := sidekiq.ParseJobString(queued)
	fmt.Println(job.JID, *job.RetryCount) // a manual retry uses up no attempt
	// Output:
	// retried 1 of 1 matching
	// queued 1, still in retry 1
	// jid0 -1
}
