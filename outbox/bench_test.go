package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
)

// BenchmarkRelay measures how many committed rows per second a relay delivers into a real
// Redis (claim, pipelined guarded push, mark, commit), next to PushBulk and to one guarded
// PushJob per row on the same Redis. Inserting the rows is not timed. Run with a fixed
// count, as BENCHMARKS.md says:
//
//	go test ./outbox -run '^$' -bench Relay -benchtime 20000x
func BenchmarkRelay(b *testing.B) {
	ctx := context.Background()
	for _, batch := range []int{100, 500, 1000} {
		b.Run(fmt.Sprintf("relay/batch=%d", batch), func(b *testing.B) {
			db, table := newTable(b)
			rr := testsuite.RealRedis(b)
			for done := 0; done < b.N; done += 1000 {
				pushInTx(b, db, table, min(1000, b.N-done), true)
			}
			relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table, Batch: batch})
			b.ResetTimer()
			delivered := 0
			for delivered < b.N {
				n, err := relay.RunOnce(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					b.Fatalf("%d of %d rows delivered, then nothing to claim", delivered, b.N)
				}
				delivered += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.StopTimer()
			if n := rr.Client.LLen(ctx, "queue:default").Val(); n != int64(b.N) {
				b.Fatalf("queue holds %d jobs, want %d", n, b.N)
			}
		})
	}
	b.Run("PushBulk", func(b *testing.B) {
		rr := testsuite.RealRedis(b)
		args := make([][]any, b.N)
		for i := range args {
			args[i] = []any{i, "user@example.com"}
		}
		client := sidekiq.NewClient(rr.Client, nil)
		b.ResetTimer()
		if _, err := client.PushBulk(ctx, "WelcomeEmailJob", args); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("PushJobs-guarded-500", func(b *testing.B) {
		rr := testsuite.RealRedis(b)
		client := sidekiq.NewClient(rr.Client, nil)
		pushes := make([]sidekiq.JobPush, 0, 500)
		b.ResetTimer()
		for i := range b.N {
			job := &sidekiq.Job{Class: "WelcomeEmailJob", JID: sidekiq.NewJID(), Args: []byte(fmt.Sprintf(`[%d,"user@example.com"]`, i))}
			pushes = append(pushes, sidekiq.JobPush{Job: job, Guards: []sidekiq.PushGuard{outbox.DeliveryGuard(job.JID)}})
			if len(pushes) == cap(pushes) || i == b.N-1 {
				if _, err := client.PushJobs(ctx, pushes); err != nil {
					b.Fatal(err)
				}
				pushes = pushes[:0]
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("PushJob-each-guarded", func(b *testing.B) {
		rr := testsuite.RealRedis(b)
		client := sidekiq.NewClient(rr.Client, nil)
		b.ResetTimer()
		for i := range b.N {
			job := &sidekiq.Job{Class: "WelcomeEmailJob", JID: sidekiq.NewJID(), Args: []byte(fmt.Sprintf(`[%d,"user@example.com"]`, i))}
			gctx := sidekiq.WithPushGuards(ctx, outbox.DeliveryGuard(job.JID))
			if _, err := client.PushJob(gctx, job); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkRelayLatency measures the time from a one-row commit to the job in its Redis
// queue, with a started relay: woken by LISTEN/NOTIFY, and polling alone (DisableListen)
// at the default 200 ms interval.
//
//	go test ./outbox -run '^$' -bench RelayLatency -benchtime 100x
func BenchmarkRelayLatency(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		listen bool
	}{{"listen", true}, {"poll-200ms", false}} {
		b.Run(tc.name, func(b *testing.B) {
			db, table := newTable(b)
			rr := testsuite.RealRedis(b)
			relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table, DisableListen: !tc.listen})
			if err := relay.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = relay.Stop(ctx) })
			b.ResetTimer()
			for i := range b.N {
				pushInTx(b, db, table, 1, true)
				for rr.Client.LLen(ctx, "queue:default").Val() < int64(i+1) {
					time.Sleep(100 * time.Microsecond)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/row")
		})
	}
}
