package tracing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/tracing"
)

// Trace a job from its push to its run. In a program the TracerProvider exports to your
// collector (otlptracegrpc, say); here an in-memory exporter shows the spans.
func Example() {
	mr, err := miniredis.Run() // a real Redis in production
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1})
	srv.Use(tracing.New(&tracing.Config{TracerProvider: tp})) // first
	done := make(chan struct{})
	srv.Handle("HardWorker", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		close(done)
		return nil
	}))

	ctx := context.Background()
	if _, err := srv.Client().Push(ctx, "HardWorker", []any{"bob", 5}); err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	<-done
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = srv.Stop(sctx)

	spans := exp.GetSpans()
	publish, process := spans[0], spans[1]
	fmt.Println(publish.Name, publish.SpanKind)
	fmt.Println(process.Name, process.SpanKind)
	fmt.Println("linked to the push:", process.Links[0].SpanContext.SpanID() == publish.SpanContext.SpanID())
	// Output:
	// default publish producer
	// default process consumer
	// linked to the push: true
}
