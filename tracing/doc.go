// Package tracing traces Ferry jobs with OpenTelemetry, in the same trace as the Rails app
// and its Ruby Sidekiq processes.
//
// Ruby's opentelemetry-instrumentation-sidekiq writes the pushing span's context into the
// job itself: its client middleware calls OpenTelemetry.propagation.inject(job), so with
// the SDK's default propagators the payload gains top-level string keys "traceparent"
// (W3C, "00-<trace id>-<span id>-<flags>"), "tracestate" when there is one, and "baggage"
// when there is any. Its server middleware extracts them and starts the job's span. This
// package does the same on both sides, with the same span names, kinds, attributes and
// events, so a trace can cross from Ruby to Go and back.
//
// # Setup
//
// One Middleware value acts on both sides. Install it first, so its spans enclose the
// other middleware:
//
//	tr := tracing.New(nil)  // global TracerProvider; W3C trace context and baggage
//	srv.Use(tr)             // a span per job, and per push through srv.Client()
//	client.Use(tr)          // a span per push of a Client of your own
//
// # Spans
//
// A job gets a consumer span "<queue> process" (or "<class> process" with SpanNameClass),
// a push a producer span "<queue> publish", with the attributes Ruby's instrumentation
// writes: messaging.system "sidekiq", messaging.sidekiq.job_class (the ActiveJob class for
// ActiveJob jobs), messaging.message_id (the jid), messaging.destination (the queue),
// messaging.destination_kind "queue", messaging.operation "process" on job spans, and
// peer.service when Config.PeerService is set. Job spans carry "created_at" and
// "enqueued_at" events at the payload's times (float seconds or Sidekiq 8 milliseconds),
// push spans "created_at". A failed job records an "exception" event and the status
// "Unhandled exception of type: <error class>"; a sidekiq.RetryIn, a push stopped by a
// lock and a skipped job are not failures. In PushBulk (as in Ruby's push_bulk) a push
// span covers the push middleware of its job; the batch is written after the spans end.
//
// # How a job relates to its push
//
// Config.Propagation matches Ruby's propagation_style, and both sides should agree:
// PropagateLink (the default, as Ruby's) starts each job in a new trace linked to the
// pushing span; PropagateChild makes it the pushing span's child, one trace from web
// request to last job; PropagateNone relates them not at all. Baggage travels in every
// style and is in the handler's context (baggage.FromContext).
//
// # Untrusted payloads
//
// Anyone who can write to Redis chooses the payload. A trace-context value that is not a
// JSON string, or is longer than Config.MaxContextBytes (8 KiB), is ignored before it is
// unquoted or parsed; a malformed one fails OpenTelemetry's parsing and is ignored too. The
// job then runs in a new trace, never fails for it, and costs no memory in proportion to
// the junk. Class, queue and jid attributes are cut to 256 bytes and made valid UTF-8.
package tracing
