package tracing_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/tracing"
)

// rubyInject is a Sidekiq client middleware that writes into the job hash exactly what
// opentelemetry-instrumentation-sidekiq's client middleware writes there:
// OpenTelemetry.propagation.inject(job) with the SDK's default propagators (W3C
// trace context, then baggage) and the default text map setter, which is job[key] = value.
// The OpenTelemetry gems are not installed here, so the values are fixed; the keys, their
// place in the hash and the string formats are the real ones.
const rubyInject = `
class OtelInject
  def call(_worker_class, job, _queue, _redis_pool)
    job["traceparent"] = "00-` + rubyTraceID + `-` + rubySpanID + `-01"
    job["tracestate"] = "rojo=00f067aa0ba902b7"
    job["baggage"] = "testing_baggage=it_worked"
    yield
  end
end
Sidekiq.configure_client { |c| c.client_middleware { |ch| ch.prepend OtelInject } }
`

// TestRubyToGo: real Ruby Sidekiq 6.4.1 pushes with the instrumentation's context in the
// payload; a Ferry server with tracing runs the job in a span linked to Ruby's publish
// span, with Ruby's baggage in the handler's context.
func TestRubyToGo(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	testsuite.Ruby(t, db.URL, rubyInject+`
Sidekiq::Client.push("class" => "HardWorker", "queue" => "traced", "args" => [1, "bob"])
`)
	raw := db.Client.LIndex(context.Background(), "queue:traced", 0).Val()
	if !strings.Contains(raw, `"traceparent":"00-`+rubyTraceID) {
		t.Fatalf("Ruby's payload has no traceparent: %s", raw)
	}
	mw, exp := newTracing(t, tracing.Config{})
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 1, Queues: []string{"traced"}})
	srv.Use(mw)
	bag := make(chan string, 1)
	srv.Handle("HardWorker", sidekiq.HandlerFunc(func(ctx context.Context, _ *sidekiq.Job) error {
		bag <- baggage.FromContext(ctx).Member("testing_baggage").Value()
		return nil
	}))
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-bag:
	case <-time.After(20 * time.Second):
		t.Fatal("the job did not run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	s := only(t, exp)
	if s.Name != "traced process" || len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != rubyTraceID ||
		s.Links[0].SpanContext.SpanID().String() != rubySpanID {
		t.Errorf("span %q links %+v, want \"traced process\" linked to Ruby's span", s.Name, s.Links)
	}
	if got != "it_worked" {
		t.Errorf("baggage %q, want it_worked", got)
	}
}

// TestGoToRuby: Go pushes with tracing; Ruby Sidekiq reads the job and finds the context
// where the instrumentation's server middleware looks for it (job["traceparent"] and
// job["baggage"], plain strings), in the W3C form its TraceParent parser accepts, naming
// Go's publish span.
func TestGoToRuby(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	mw, exp := newTracing(t, tracing.Config{})
	c := sidekiq.NewClient(db.Client, nil)
	c.Use(mw)
	m, _ := baggage.NewMember("user_id", "42")
	b, _ := baggage.New(m)
	if _, err := c.Push(baggage.ContextWithBaggage(context.Background(), b), "RubyWorker", []any{1}, sidekiq.Queue("traced")); err != nil {
		t.Fatal(err)
	}
	out := testsuite.Ruby(t, db.URL, `
job = Sidekiq::Queue.new("traced").first.item
tp = job["traceparent"]
m = /\A(?<version>[a-f0-9]{2})-(?<trace_id>[a-f0-9]{32})-(?<span_id>[a-f0-9]{16})-(?<flags>[a-f0-9]{2})\z/.match(tp)
raise "traceparent #{tp.inspect} is not W3C version 00" unless m && m[:version] == "00"
puts JSON.generate("trace_id" => m[:trace_id], "span_id" => m[:span_id], "sampled" => m[:flags].to_i(16) & 1 == 1,
                   "baggage" => job["baggage"], "class" => job["traceparent"].class.name)
`)
	var got struct {
		TraceID string `json:"trace_id"`
		SpanID  string `json:"span_id"`
		Sampled bool   `json:"sampled"`
		Baggage string `json:"baggage"`
		Class   string `json:"class"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
		t.Fatalf("ruby printed %q: %v", out, err)
	}
	s := only(t, exp)
	if got.TraceID != s.SpanContext.TraceID().String() || got.SpanID != s.SpanContext.SpanID().String() || !got.Sampled {
		t.Errorf("Ruby read trace %s span %s sampled %v; Go's publish span is %s %s", got.TraceID, got.SpanID, got.Sampled,
			s.SpanContext.TraceID(), s.SpanContext.SpanID())
	}
	if got.Baggage != "user_id=42" || got.Class != "String" {
		t.Errorf("Ruby read baggage %q, traceparent a %s", got.Baggage, got.Class)
	}
}
