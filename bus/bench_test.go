package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// BenchmarkDrive measures driving: events per second taken from bus_incoming and fanned
// out to three subscriptions (three applications), with a Ferry server driving and with
// Ruby Sidekiq + sidekiq-bus driving, both at concurrency 10 on the same Redis. The clock
// runs from the first event pushed (in bulk, the same way for every driver) until all
// 3×N subscriber jobs are queued; the drivers are up before it starts. Subscribers do not
// run. Run it with a fixed count, since each run starts a driver:
//
//	go test ./bus -run '^$' -bench BenchmarkDrive -benchtime 5000x
func BenchmarkDrive(b *testing.B) {
	b.Run("ferry", func(b *testing.B) {
		benchDrive(b, func(b *testing.B, db *testsuite.RealRedisDB) {
			srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Queues: []string{bus.IncomingQueue}, Concurrency: 10})
			if _, err := bus.Attach(srv); err != nil {
				b.Fatal(err)
			}
			if err := srv.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Stop(ctx)
			})
		})
	})
	for _, v := range rubyBuses {
		b.Run("ruby-sidekiq-"+v.Sidekiq, func(b *testing.B) {
			benchDrive(b, func(b *testing.B, db *testsuite.RealRedisDB) {
				startRubySidekiqC(b, v, db.URL, "", 10, bus.IncomingQueue)
				testutil.Eventually(b, 60*time.Second, "the Ruby process to start", func() bool {
					n, err := db.Client.SCard(context.Background(), "processes").Result()
					return err == nil && n == 1
				})
			})
		})
	}
}

var benchQueues = []string{"queue:app1_default", "queue:app2_default", "queue:app3_default"}

func benchDrive(b *testing.B, startDriver func(*testing.B, *testsuite.RealRedisDB)) {
	db := realRedis(b)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		app := bus.NewApp(db.Client, fmt.Sprintf("app%d", i), nil)
		app.Subscribe("order_placed", newRecorder().handler())
		if err := app.Register(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// The events, built as Publish builds them.
	now := time.Now().Unix()
	args := make([][]any, b.N)
	for i := range args {
		args[i] = []any{fmt.Sprintf(`{"bus_published_at":%d,"bus_event_type":"order_placed","bus_id":"%d-%08d","bus_app_hostname":"bench","order_id":%d,"total":"12.50","bus_class_proxy":"QueueBus::Driver"}`,
			now, now, i, i)}
	}
	client := sidekiq.NewClient(db.Client, nil)
	startDriver(b, db)

	b.ResetTimer()
	start := time.Now()
	if _, err := client.PushBulk(ctx, bus.WorkerClass, args, sidekiq.Queue(bus.IncomingQueue)); err != nil {
		b.Fatal(err)
	}
	want := int64(3 * b.N)
	deadline := time.Now().Add(10 * time.Minute)
	for fannedOut(ctx, db.Client) < want {
		if time.Now().After(deadline) {
			b.Fatalf("after 10 minutes only %d of %d subscriber jobs", fannedOut(ctx, db.Client), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

func fannedOut(ctx context.Context, rdb *redis.Client) int64 {
	var total int64
	cmds, _ := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, q := range benchQueues {
			p.LLen(ctx, q)
		}
		return nil
	})
	for _, c := range cmds {
		total += c.(*redis.IntCmd).Val()
	}
	return total
}
