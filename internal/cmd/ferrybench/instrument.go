package main

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ferryhq/ferry/promferry"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/tracing"
)

// instrument attaches what o asks for to srv, before any other middleware, as a
// production setup would: promferry metrics, gathered every second with the Redis stats
// collector as an eager Prometheus would scrape them, and tracing of every job through
// the OpenTelemetry SDK (every span sampled, batched to an exporter that drops them). The
// returned function stops the scraping and the tracer provider.
func instrument(srv *sidekiq.Server, rdb *redis.Client, o runOptions) func() {
	var stops []func()
	if o.tracing {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		srv.Use(tracing.New(&tracing.Config{TracerProvider: tp}))
		stops = append(stops, func() { _ = tp.Shutdown(context.Background()) })
	}
	if o.metrics {
		m := promferry.New(nil)
		m.Attach(srv)
		reg := prometheus.NewRegistry()
		reg.MustRegister(m, promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Queues: srv.Queues()}))
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					_, _ = reg.Gather()
				}
			}
		}()
		stops = append(stops, func() { close(done); wg.Wait() })
	}
	return func() {
		for _, f := range stops {
			f()
		}
	}
}
