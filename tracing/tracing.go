package tracing

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryhq/ferry/sidekiq"
)

// SpanNaming chooses how spans are named, as the Ruby instrumentation's span_naming option.
type SpanNaming uint8

const (
	// SpanNameQueue names spans "<queue> process" and "<queue> publish" (Ruby's default,
	// :queue).
	SpanNameQueue SpanNaming = iota
	// SpanNameClass names spans "<class> process" and "<class> publish" (Ruby's :job_class);
	// the class is the ActiveJob class for ActiveJob jobs.
	SpanNameClass
)

// Propagation chooses how a job's span relates to the span that pushed it, as the Ruby
// instrumentation's propagation_style option. Set it the same on the Ruby and Go sides.
type Propagation uint8

const (
	// PropagateLink starts each job in a trace of its own whose root span links to the
	// pushing span (Ruby's default, :link). Traces stay small when one request enqueues
	// many jobs.
	PropagateLink Propagation = iota
	// PropagateChild makes the job's span a child of the pushing span: one trace from the
	// web request through every job it caused (Ruby's :child).
	PropagateChild
	// PropagateNone starts each job in a trace of its own with no link (Ruby's :none).
	// Baggage still travels.
	PropagateNone
)

// Config configures the tracing middleware. A nil *Config means every default.
type Config struct {
	// TracerProvider makes the tracer. Default: otel.GetTracerProvider() when New is called.
	TracerProvider trace.TracerProvider
	// Propagator reads and writes the trace context in job payloads. Default: the global
	// propagator (otel.GetTextMapPropagator()) if one was set before New, else W3C trace
	// context and baggage, which is what Ruby's OpenTelemetry SDK uses by default.
	Propagator propagation.TextMapPropagator
	// SpanNaming chooses span names. Default: SpanNameQueue, as Ruby.
	SpanNaming SpanNaming
	// Propagation relates a job's span to the pushing span. Default: PropagateLink, as Ruby.
	Propagation Propagation
	// PeerService, when set, is written as the peer.service attribute, as Ruby's
	// peer_service option. Default: none.
	PeerService string
	// MaxContextBytes bounds each trace-context value read from a payload (traceparent,
	// tracestate, baggage); a longer or non-string value is ignored, as if absent.
	// Default: 8192, the W3C baggage limit.
	MaxContextBytes int
}

// Middleware traces jobs: a consumer span around every job a server runs and a producer
// span around every push, continuing and propagating the trace context in the payload the
// way Ruby's opentelemetry-instrumentation-sidekiq does. It is both a
// sidekiq.RunMiddleware and a sidekiq.PushMiddleware. Safe for concurrent use.
type Middleware struct {
	sidekiq.MiddlewareDefaults
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	fields    []string // the payload keys prop writes
	naming    SpanNaming
	style     Propagation
	peer      string
	maxCtxLen int
}

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/ferryhq/ferry/tracing"

// New returns the middleware configured by cfg (nil: defaults). Install it first, on the
// server (both sides) and on every Client that pushes:
//
//	tr := tracing.New(nil)
//	srv.Use(tr)    // job spans; pushes through srv.Client() too
//	client.Use(tr) // push spans of a standalone Client
func New(cfg *Config) *Middleware {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Propagator == nil {
		c.Propagator = otel.GetTextMapPropagator()
		if len(c.Propagator.Fields()) == 0 { // the global was never set
			c.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		}
	}
	if c.MaxContextBytes <= 0 {
		c.MaxContextBytes = 8192
	}
	return &Middleware{
		tracer:    c.TracerProvider.Tracer(ScopeName),
		prop:      c.Propagator,
		fields:    c.Propagator.Fields(),
		naming:    c.SpanNaming,
		style:     c.Propagation,
		peer:      c.PeerService,
		maxCtxLen: c.MaxContextBytes,
	}
}
