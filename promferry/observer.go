package promferry

import (
	"context"
	"errors"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// JobFinished implements sidekiq.Observer: it counts the job under its queue, class and
// outcome, and records its run time and enqueue-to-start latency. A job pushed back by a
// stopping server counts only as requeued: it will run, and be counted, again.
func (m *Metrics) JobFinished(ev *sidekiq.JobEvent) {
	class := ev.Class
	if ev.Job == nil || (ev.Err != nil && errors.Is(ev.Err, sidekiq.ErrNoHandler)) {
		class = "" // not a job, or a class this process has no handler for: OtherLabel
	}
	s := m.seriesFor(ev.Queue, class)
	switch ev.Outcome {
	case sidekiq.OutcomeRequeued:
		s.requeued.Inc()
		return
	case sidekiq.OutcomeSucceeded:
	case sidekiq.OutcomeRescheduled:
		s.rescheduled.Inc()
	case sidekiq.OutcomeRetried:
		s.failed.Inc()
		s.retried.Inc()
	case sidekiq.OutcomeDead:
		s.failed.Inc()
		s.dead.Inc()
	case sidekiq.OutcomeDropped:
		s.failed.Inc()
		s.dropped.Inc()
	}
	s.processed.Inc()
	if ev.Job == nil {
		return // never ran
	}
	s.duration.Observe(ev.Duration.Seconds())
	if !ev.Job.EnqueuedAt.IsZero() {
		s.latency.Observe(max(ev.Latency, 0).Seconds())
	}
}

// Fetched implements sidekiq.Observer: it records the size of a fetch batch.
func (m *Metrics) Fetched(queue string, jobs int) {
	m.queueFor(queue).batch.Observe(float64(jobs))
}

// RedisError implements sidekiq.Observer: it counts a failed Redis call of the server.
func (m *Metrics) RedisError(op string, _ error) {
	m.redisErrors.WithLabelValues(m.ops.value(op)).Inc()
}

// InterceptRun implements sidekiq.RunMiddleware: it counts the job as busy while the rest
// of the chain runs, and counts it as skipped when the handler (or a Needed check) called
// middleware.Skip.
func (m *Metrics) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	q := m.queueFor(job.Queue)
	q.busy.Inc()
	defer q.busy.Dec()
	ctx = middleware.TrackSkips(ctx)
	err := next(ctx)
	if err == nil && middleware.Skipped(ctx) {
		m.seriesFor(job.Queue, job.HandlerName()).skipped.Inc()
	}
	return err
}
