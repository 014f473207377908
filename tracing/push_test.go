package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
	"github.com/ferryhq/ferry/tracing"
)

// traceparentRE is the W3C traceparent a version-00 reader accepts.
var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

// TestPushWritesContext: a push gets a producer span named and attributed as Ruby's client
// middleware names it, and its context lands in the payload as top-level string keys, the
// shape Ruby's server middleware extracts; baggage travels too.
func TestPushWritesContext(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	mw, exp := newTracing(t, tracing.Config{})
	c := sidekiq.NewClient(rdb, nil)
	c.Use(mw)
	m, _ := baggage.NewMember("user_id", "42")
	bag, _ := baggage.New(m)
	ctx := baggage.ContextWithBaggage(context.Background(), bag)
	// A parent span of the caller's (a web request, say): the publish span is its child.
	parentCtx, parent := tracerFor(t).Start(ctx, "request")
	jid, err := c.Push(parentCtx, "HardWorker", []any{1}, sidekiq.Queue("critical"))
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want the publish span", len(spans))
	}
	s := spans[0]
	if s.Name != "critical publish" || s.SpanKind != trace.SpanKindProducer {
		t.Errorf("span %q kind %v", s.Name, s.SpanKind)
	}
	want := map[string]string{
		"messaging.system": "sidekiq", "messaging.sidekiq.job_class": "HardWorker", "messaging.message_id": jid,
		"messaging.destination": "critical", "messaging.destination_kind": "queue",
	}
	if got := attrs(s.Attributes); len(got) != len(want) {
		t.Errorf("attributes %v, want %v", got, want)
	} else {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("attribute %s = %q, want %q", k, got[k], v)
			}
		}
	}
	if len(s.Events) != 1 || s.Events[0].Name != "created_at" {
		t.Errorf("events %+v, want created_at", s.Events)
	}
	if s.Parent.TraceID() != parent.SpanContext().TraceID() || s.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Error("the publish span is not a child of the caller's span")
	}

	raw := rdb.LIndex(context.Background(), "queue:critical", 0).Val()
	var payload map[string]any
	if err := json.Unmarshal([]byte(raw), &payload); err != nil {
		t.Fatal(err)
	}
	tp, _ := payload["traceparent"].(string)
	mt := traceparentRE.FindStringSubmatch(tp)
	if mt == nil || mt[1] != s.SpanContext.TraceID().String() || mt[2] != s.SpanContext.SpanID().String() {
		t.Errorf("payload traceparent %q, want the publish span's (%s)", tp, raw)
	}
	if payload["baggage"] != "user_id=42" {
		t.Errorf("payload baggage %v, want user_id=42", payload["baggage"])
	}
}

// TestGoToGo: a job pushed and run by Go with tracing on both sides is linked to its
// publish span (child with PropagateChild); an old context in a re-pushed job is replaced.
func TestGoToGo(t *testing.T) {
	t.Parallel()
	for _, style := range []tracing.Propagation{tracing.PropagateLink, tracing.PropagateChild} {
		rdb, _ := testutil.NewEmbeddedRedis(t)
		mw, exp := newTracing(t, tracing.Config{Propagation: style})
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1})
		srv.Use(mw)
		done := make(chan struct{})
		srv.Handle("HardWorker", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { close(done); return nil }))
		// A job carrying a stale context from an earlier hop: the push replaces it.
		old := parse(t, `{"class":"HardWorker","args":[],"queue":"default",`+rubyContext+`}`)
		if _, err := srv.Client().PushJob(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := srv.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		spans := exp.GetSpans()
		if len(spans) != 2 {
			t.Fatalf("%d spans, want publish and process", len(spans))
		}
		pub, proc := spans[0], spans[1]
		if pub.Name != "default publish" || proc.Name != "default process" {
			t.Fatalf("spans %q, %q", pub.Name, proc.Name)
		}
		switch style {
		case tracing.PropagateLink:
			if len(proc.Links) != 1 || proc.Links[0].SpanContext.SpanID() != pub.SpanContext.SpanID() ||
				proc.Links[0].SpanContext.TraceState().Len() != 0 {
				t.Errorf("process links %+v, want the publish span (without Ruby's stale tracestate)", proc.Links)
			}
		case tracing.PropagateChild:
			if proc.Parent.SpanID() != pub.SpanContext.SpanID() || proc.SpanContext.TraceID() != pub.SpanContext.TraceID() {
				t.Error("process span is not the publish span's child")
			}
		}
	}
}

// TestPushStoppedIsNotAnError: a push a lock or guard stops leaves the span without an
// error status; a Redis failure sets it.
func TestPushStoppedIsNotAnError(t *testing.T) {
	t.Parallel()
	rdb, mr := testutil.NewEmbeddedRedis(t)
	mw, exp := newTracing(t, tracing.Config{})
	c := sidekiq.NewClient(rdb, nil)
	c.Use(mw, sidekiq.PushFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
		if job.Class == "Locked" {
			return nil // stops the push
		}
		return next(ctx)
	}))
	if _, err := c.Push(context.Background(), "Locked", nil); !errors.Is(err, sidekiq.ErrPushStopped) {
		t.Fatalf("push: %v, want ErrPushStopped", err)
	}
	mr.Close()
	if _, err := c.Push(context.Background(), "Free", nil); err == nil {
		t.Fatal("push with Redis down succeeded")
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Status.Code != codes.Unset || spans[1].Status.Code != codes.Error {
		t.Errorf("statuses %v / %v, want unset then error", spans[0].Status, spans[1].Status)
	}
}
