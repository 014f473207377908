package tracing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferryhq/ferry/sidekiq"
)

// InterceptPush implements sidekiq.PushMiddleware: a producer span "<queue> publish" around
// the rest of the push, whose context is written into the job (top-level "traceparent",
// and "tracestate" and "baggage" when there are any) for the process that runs it, Ruby or
// Go. Keys of an earlier context in a re-pushed job are replaced. A push stopped by a lock
// or guard is not an error.
func (m *Middleware) InterceptPush(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	class := safe(jobClass(job))
	ctx, span := m.tracer.Start(ctx, m.spanName(job, class, "publish"),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(m.attributes(job, class, 0)...))
	defer span.End()
	for _, f := range m.fields {
		delete(job.Extra, f)
	}
	m.prop.Inject(ctx, payloadCarrier{job: job, max: m.maxCtxLen})
	if !job.CreatedAt.IsZero() {
		span.AddEvent("created_at", trace.WithTimestamp(job.CreatedAt))
	}
	err := next(ctx)
	var held *sidekiq.PushStoppedError
	if err != nil && !errors.Is(err, sidekiq.ErrPushStopped) && !errors.As(err, &held) {
		recordError(span, errorType(err), err.Error())
	}
	return err
}
