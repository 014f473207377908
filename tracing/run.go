package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// InterceptRun implements sidekiq.RunMiddleware: a consumer span "<queue> process" around
// the rest of the chain, related to the pushing span found in the payload as
// Config.Propagation says, with the payload's baggage in the context. A trace context that
// is malformed, of the wrong type or too long is ignored: the job runs in a new trace.
func (m *Middleware) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) (err error) {
	class := safe(jobClass(job))
	ctx = m.prop.Extract(ctx, payloadCarrier{job: job, max: m.maxCtxLen})
	opts := make([]trace.SpanStartOption, 0, 4)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(append(m.attributes(job, class, 1), AttrOperation.String("process"))...))
	if m.style != PropagateChild {
		opts = append(opts, trace.WithNewRoot())
		if sc := trace.SpanContextFromContext(ctx); m.style == PropagateLink && sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := m.tracer.Start(ctx, m.spanName(job, class, "process"), opts...)
	if !job.CreatedAt.IsZero() {
		span.AddEvent("created_at", trace.WithTimestamp(job.CreatedAt))
	}
	if !job.EnqueuedAt.IsZero() {
		span.AddEvent("enqueued_at", trace.WithTimestamp(job.EnqueuedAt))
	}
	defer func() {
		if r := recover(); r != nil {
			recordError(span, "panic", fmt.Sprint(r))
			span.End()
			panic(r) // the server turns it into a *sidekiq.PanicError
		}
		span.End()
	}()
	err = next(ctx)
	if err != nil && !errors.Is(err, sidekiq.ErrRetryIn) { // RetryIn is not a failure
		recordError(span, errorType(err), err.Error())
	}
	return err
}

// recordError adds the exception event and the error status Ruby's instrumentation sets,
// with the message cut (it may quote the payload).
func recordError(span trace.Span, typ, msg string) {
	span.AddEvent("exception", trace.WithAttributes(
		attribute.String("exception.type", typ),
		attribute.String("exception.message", safe(logcap.Cut(msg, 4*maxAttrBytes))),
	))
	span.SetStatus(codes.Error, "Unhandled exception of type: "+typ)
}
