package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/tracing"
)

// newTracing returns the middleware recording into an in-memory exporter.
func newTracing(t *testing.T, cfg tracing.Config) (*tracing.Middleware, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.TracerProvider = tp
	return tracing.New(&cfg), exp
}

// attrs turns span attributes into a map.
func attrs(kvs []attribute.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// parse parses a payload as a server would.
func parse(t testing.TB, payload string) *sidekiq.Job {
	t.Helper()
	job, err := sidekiq.ParseJobString(payload)
	if err != nil {
		t.Fatalf("ParseJobString(%s): %v", payload, err)
	}
	return job
}

// only returns the single span recorded, failing otherwise.
func only(t *testing.T, exp *tracetest.InMemoryExporter) tracetest.SpanStub {
	t.Helper()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans recorded, want 1: %v", len(spans), spans)
	}
	return spans[0]
}

// tracerFor returns a tracer whose spans go nowhere, for a caller's own spans.
func tracerFor(t *testing.T) trace.Tracer {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("caller")
}
