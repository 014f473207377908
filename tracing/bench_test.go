package tracing_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ferryhq/ferry/tracing"
)

// BenchmarkRun is what tracing adds to one job Ruby pushed with a trace context: extract,
// a sampled span with its attributes, events and link, batched to an exporter that drops
// it.
func BenchmarkRun(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	mw := tracing.New(&tracing.Config{TracerProvider: tp})
	job := parse(b, rubyPayloads["sidekiq 6/7 (float seconds)"])
	next := func(context.Context) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = mw.InterceptRun(ctx, job, next)
		}
	})
}
