package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/tracing"
)

// The context Ruby's instrumentation writes: OpenTelemetry.propagation.inject(job) in its
// client middleware, with the SDK's default propagators (W3C trace context and baggage)
// and the default setter (job[key] = value). So three top-level string keys.
const (
	rubyTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	rubySpanID  = "00f067aa0ba902b7"
	rubyContext = `"traceparent":"00-` + rubyTraceID + `-` + rubySpanID + `-01","tracestate":"rojo=00f067aa0ba902b7","baggage":"testing_baggage=it_worked"`
)

// Payloads as Sidekiq writes them with the instrumentation loaded: the middleware adds
// the keys after normalize_item (class, args, retry, queue, jid, created_at) and before
// enqueued_at is set by the push.
var rubyPayloads = map[string]string{
	"sidekiq 6/7 (float seconds)": `{"class":"HardWorker","args":[1,"bob"],"retry":true,"queue":"default","jid":"b4a577edbccf1d805744efa9","created_at":1700000000.123456,` +
		rubyContext + `,"enqueued_at":1700000001.5}`,
	"sidekiq 8 (milliseconds)": `{"retry":true,"queue":"default","class":"HardWorker","args":[1,"bob"],"jid":"b4a577edbccf1d805744efa9","created_at":1700000000123,` +
		rubyContext + `,"enqueued_at":1700000001500}`,
	"activejob": `{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"HardWorker","queue":"default","args":[{"job_class":"HardWorker","arguments":[1,"bob"]}],"retry":true,"jid":"b4a577edbccf1d805744efa9","created_at":1700000000.123456,` +
		rubyContext + `,"enqueued_at":1700000001.5}`,
}

// TestContinuesRubyTrace: a job Ruby pushed gets a consumer span named and attributed as
// Ruby's server middleware names it, with created_at and enqueued_at events, related to
// Ruby's publish span in each propagation style, and the baggage reaches the handler.
func TestContinuesRubyTrace(t *testing.T) {
	t.Parallel()
	for name, payload := range rubyPayloads {
		for _, style := range []tracing.Propagation{tracing.PropagateLink, tracing.PropagateChild, tracing.PropagateNone} {
			t.Run(fmt.Sprintf("%s/style %d", name, style), func(t *testing.T) {
				t.Parallel()
				mw, exp := newTracing(t, tracing.Config{Propagation: style, PeerService: "billing"})
				job := parse(t, payload)
				var bag string
				var handlerSpan trace.SpanContext
				err := mw.InterceptRun(context.Background(), job, func(ctx context.Context) error {
					bag = baggage.FromContext(ctx).Member("testing_baggage").Value()
					handlerSpan = trace.SpanContextFromContext(ctx)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				s := only(t, exp)
				if s.Name != "default process" || s.SpanKind != trace.SpanKindConsumer {
					t.Errorf("span %q kind %v, want \"default process\", consumer", s.Name, s.SpanKind)
				}
				want := map[string]string{
					"messaging.system": "sidekiq", "messaging.sidekiq.job_class": "HardWorker",
					"messaging.message_id": "b4a577edbccf1d805744efa9", "messaging.destination": "default",
					"messaging.destination_kind": "queue", "messaging.operation": "process", "peer.service": "billing",
				}
				if got := attrs(s.Attributes); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("attributes %v, want %v", got, want)
				}
				near := func(got time.Time, want time.Time) bool { return got.Sub(want).Abs() <= time.Microsecond }
				if len(s.Events) != 2 || s.Events[0].Name != "created_at" || s.Events[1].Name != "enqueued_at" ||
					!near(s.Events[0].Time, time.UnixMilli(1700000000123)) && !near(s.Events[0].Time, time.Unix(1700000000, 123456000)) ||
					!near(s.Events[1].Time, time.UnixMilli(1700000001500)) {
					t.Errorf("events %+v, want created_at and enqueued_at at the payload's times", s.Events)
				}
				if bag != "it_worked" {
					t.Errorf("baggage in the handler = %q, want it_worked", bag)
				}
				if handlerSpan.SpanID() != s.SpanContext.SpanID() {
					t.Error("the handler's context does not carry the job span")
				}
				tid, sid := s.SpanContext.TraceID().String(), s.Parent.SpanID().String()
				switch style {
				case tracing.PropagateLink:
					if len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != rubyTraceID ||
						s.Links[0].SpanContext.SpanID().String() != rubySpanID || s.Links[0].SpanContext.TraceState().Get("rojo") != "00f067aa0ba902b7" {
						t.Errorf("links %+v, want one to Ruby's publish span", s.Links)
					}
					if tid == rubyTraceID || s.Parent.IsValid() {
						t.Error("link style continued Ruby's trace as a child")
					}
				case tracing.PropagateChild:
					if tid != rubyTraceID || sid != rubySpanID || len(s.Links) != 0 {
						t.Errorf("child style: trace %s parent %s links %d, want Ruby's trace and span", tid, sid, len(s.Links))
					}
				case tracing.PropagateNone:
					if tid == rubyTraceID || s.Parent.IsValid() || len(s.Links) != 0 {
						t.Error("none style related the job to Ruby's span")
					}
				}
			})
		}
	}
}

// TestSpanNamingByClass: SpanNameClass names spans after the class, the ActiveJob class for
// ActiveJob jobs, as Ruby's span_naming: :job_class.
func TestSpanNamingByClass(t *testing.T) {
	t.Parallel()
	mw, exp := newTracing(t, tracing.Config{SpanNaming: tracing.SpanNameClass})
	if err := mw.InterceptRun(context.Background(), parse(t, rubyPayloads["activejob"]), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if s := only(t, exp); s.Name != "HardWorker process" {
		t.Errorf("span name %q, want \"HardWorker process\"", s.Name)
	}
}

type classedError struct{}

func (classedError) Error() string      { return "card declined" }
func (classedError) ErrorClass() string { return "Billing::Declined" }

// TestFailures: a failing job records the exception and an error status as Ruby does; a
// RetryIn is not a failure; a panic is recorded and goes on to the server.
func TestFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		run      func(context.Context) error
		status   codes.Code
		typ, msg string
	}{
		{"error", func(context.Context) error { return fmt.Errorf("charging: %w", errors.New("boom")) }, codes.Error, "*errors.errorString", "charging: boom"},
		{"error class", func(context.Context) error { return sidekiq.Discard(classedError{}) }, codes.Error, "Billing::Declined", "sidekiq: job discarded: card declined"},
		{"retry in", func(context.Context) error { return sidekiq.RetryIn(time.Minute, errors.New("later")) }, codes.Unset, "", ""},
		{"panic", func(context.Context) error { panic("kaput") }, codes.Error, "panic", "kaput"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mw, exp := newTracing(t, tracing.Config{})
			func() {
				defer func() {
					if r := recover(); r != nil && tc.name != "panic" {
						t.Errorf("unexpected panic %v", r)
					} else if r == nil && tc.name == "panic" {
						t.Error("the panic was swallowed")
					}
				}()
				_ = mw.InterceptRun(context.Background(), parse(t, rubyPayloads["sidekiq 8 (milliseconds)"]), tc.run)
			}()
			s := only(t, exp)
			if s.Status.Code != tc.status {
				t.Errorf("status %v, want %v", s.Status, tc.status)
			}
			if tc.typ == "" {
				return
			}
			if s.Status.Description != "Unhandled exception of type: "+tc.typ {
				t.Errorf("status description %q", s.Status.Description)
			}
			ev := s.Events[len(s.Events)-1]
			if a := attrs(ev.Attributes); ev.Name != "exception" || a["exception.type"] != tc.typ || a["exception.message"] != tc.msg {
				t.Errorf("last event %s %v, want exception %s %q", ev.Name, a, tc.typ, tc.msg)
			}
		})
	}
}

// TestUntrustedContext: a trace context of the wrong type, malformed, or huge, and payload
// values of any size, never fail the job: it runs once in a new trace without a link, and
// what the span keeps from the payload is bounded.
func TestUntrustedContext(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("a", 1<<20)
	manyMembers := strings.Repeat("k=v,", 20000)
	valid := `"00-` + rubyTraceID + `-` + rubySpanID + `-01"`
	for name, extra := range map[string]string{
		"number":            `"traceparent":12345`,
		"object":            `"traceparent":{"trace_id":"` + rubyTraceID + `"}`,
		"array":             `"traceparent":["00",1]`,
		"null":              `"traceparent":null`,
		"empty":             `"traceparent":""`,
		"garbage":           `"traceparent":"not-a-trace-parent"`,
		"huge":              `"traceparent":"` + huge + `"`,
		"bad version":       `"traceparent":"ff-` + rubyTraceID + `-` + rubySpanID + `-01"`,
		"zero trace id":     `"traceparent":"00-00000000000000000000000000000000-` + rubySpanID + `-01"`,
		"escaped huge":      `"traceparent":"` + strings.Repeat(`\u0041`, 5000) + `"`,
		"valid, huge state": `"traceparent":` + valid + `,"tracestate":"` + huge + `"`,
		"huge baggage":      `"baggage":"` + manyMembers + `"`,
		"many members":      `"baggage":"` + manyMembers[:8000] + `"`,
		"invalid utf-8":     "\"traceparent\":\"00-\xff\xfe\"",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mw, exp := newTracing(t, tracing.Config{})
			payload := `{"class":"` + huge + `","args":[],"queue":"` + huge + `","jid":"` + huge + `",` + extra + `}`
			job, err := sidekiq.ParseJobString(payload)
			if err != nil {
				t.Skipf("not a job Ferry would run: %v", err) // invalid payloads never reach middleware
			}
			runs := 0
			if err := mw.InterceptRun(context.Background(), job, func(ctx context.Context) error {
				runs++
				if n := baggage.FromContext(ctx).Len(); n > 180 {
					t.Errorf("%d baggage members reached the handler", n)
				}
				return nil
			}); err != nil || runs != 1 {
				t.Fatalf("job: err %v, runs %d", err, runs)
			}
			s := only(t, exp)
			if name == "valid, huge state" {
				if len(s.Links) != 1 || s.Links[0].SpanContext.TraceState().Len() != 0 {
					t.Errorf("valid traceparent with a huge tracestate: links %+v, want one link without the state", s.Links)
				}
			} else if len(s.Links) != 0 || s.Parent.IsValid() {
				t.Errorf("a bad context produced links %v or a parent", s.Links)
			}
			if len(s.Name) > 300 {
				t.Errorf("span name of %d bytes", len(s.Name))
			}
			for k, v := range attrs(s.Attributes) {
				if len(v) > 300 {
					t.Errorf("attribute %s of %d bytes", k, len(v))
				}
			}
		})
	}
}

// TestHugeContextCostsNoMemory: the memory a job's span costs does not grow with the size of
// the trace context in its payload: an oversized value is skipped, never copied or parsed.
// (Not parallel: it reads the process's allocation counter.)
func TestHugeContextCostsNoMemory(t *testing.T) {
	mw, _ := newTracing(t, tracing.Config{})
	huge := strings.Repeat("a", 1<<20)
	perJob := func(extra string) uint64 {
		job := parse(t, `{"class":"K","args":[],"queue":"default","jid":"j",`+extra+`}`)
		next := func(context.Context) error { return nil }
		_ = mw.InterceptRun(context.Background(), job, next) // warm up
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 20 {
			_ = mw.InterceptRun(context.Background(), job, next)
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 20
	}
	small := perJob(`"traceparent":"00-` + rubyTraceID + `-` + rubySpanID + `-01"`)
	big := perJob(`"traceparent":"` + huge + `","tracestate":"` + huge + `","baggage":"` + huge + `"`)
	if big > small+16<<10 {
		t.Errorf("a job with 3 MiB of trace context allocates %d bytes per run, one with a normal context %d", big, small)
	}
}
