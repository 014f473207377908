package promferry_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/promferry"
	"github.com/ferryhq/ferry/sidekiq"
)

// Attach Metrics to a server, add the shared Redis figures, and serve both (here: read
// them from the registry, as a scrape would).
func Example() {
	mr, err := miniredis.Run() // a real Redis in production
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2, Queues: []string{"default"}})
	m := promferry.New(nil)
	m.Attach(srv) // first, so busy time includes the other middleware
	done := make(chan struct{})
	srv.Handle("HardWorker", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		close(done)
		return nil
	}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(m, promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Queues: srv.Queues()}))
	// In a program: http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	if _, err := srv.Client().Push(ctx, "HardWorker", []any{"bob", 5}); err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	<-done
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = srv.Stop(sctx) // JobFinished has been observed once Stop returns

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "ferry_jobs_processed_total", "ferry_sidekiq_queue_size":
			for _, mt := range mf.GetMetric() {
				v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
				fmt.Println(mf.GetName(), labels(mt.GetLabel()), v)
			}
		}
	}
	// Output:
	// ferry_jobs_processed_total queue=default class=HardWorker 1
	// ferry_sidekiq_queue_size queue=default 0
}
