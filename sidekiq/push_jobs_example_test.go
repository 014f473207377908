package sidekiq_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
)

// PushJobs sends caller-built jobs, each with its own schedule and guards, in one round
// trip, and reports per job: here the second delivery of the same jid is stopped by its
// once-only marker.
func ExampleClient_PushJobs() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()
	client := sidekiq.NewClient(rdb, nil)

	marker := func(jid string) []sidekiq.PushGuard {
		return []sidekiq.PushGuard{{Key: "delivered:" + jid, TTL: time.Hour}}
	}
	pushes := []sidekiq.JobPush{
		{Job: &sidekiq.Job{Class: "EmailJob", JID: "a1", Args: []byte(`[1]`)}, Guards: marker("a1")},
		{Job: &sidekiq.Job{Class: "ReportJob", JID: "b2"}, At: time.Now().Add(time.Hour), Guards: marker("b2")},
		{Job: &sidekiq.Job{Class: "EmailJob", JID: "a1", Args: []byte(`[1]`)}, Guards: marker("a1")},
	}
	results, err := client.PushJobs(ctx, pushes)
	if err != nil {
		panic(err) // Redis did not answer for some jobs
	}
	for _, r := range results {
		fmt.Println(r.JID, r.Err == nil, errors.Is(r.Err, sidekiq.ErrPushStopped))
	}
	fmt.Println(rdb.LLen(ctx, "queue:default").Val(), "queued,", rdb.ZCard(ctx, "schedule").Val(), "scheduled")
	// Output:
	// a1 true false
	// b2 true false
	// a1 false true
	// 1 queued, 1 scheduled
}
