package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// worker runs jobs from the work channel until it is closed. tid names it in the Web UI's
// list of running jobs.
func (s *Server) worker(tid string) {
	defer s.workers.Done()
	for u := range s.work {
		if s.isQuiet() {
			// Fetched but not started when quiet began: back to the head of its queue.
			s.requeueOne(u)
			s.reconcile.release(u)
			s.release(u)
			continue
		}
		s.process(u, tid)
	}
}

// process runs one job and records its outcome.
func (s *Server) process(u *unit, tid string) {
	defer s.release(u)
	u.tid = tid
	u.startedAt = s.cfg.Clock.Now()
	queue := s.specs[u.q].name

	job, err := ParseJobString(u.raw)
	if err != nil {
		s.stats.failed(1)
		s.buryInvalid(u, err)
		s.observe(&JobEvent{Queue: queue, Outcome: OutcomeDead, Err: err, Started: u.startedAt})
		return
	}
	if job.Queue == "" {
		job.Queue = queue // the list a job was fetched from is authoritative
	}

	s.running.Store(tid, u)
	began := time.Now() // monotonic, whatever Config.Clock says
	err = s.perform(job)
	elapsed := time.Since(began)
	s.running.Delete(tid)
	s.observeDuration(elapsed)

	ev := &JobEvent{Job: job, Class: job.HandlerName(), Queue: queue, Err: err, Started: u.startedAt, Duration: elapsed}
	if !job.EnqueuedAt.IsZero() {
		ev.Latency = max(u.startedAt.Sub(job.EnqueuedAt), 0)
	}
	switch {
	case u.abandoned.Load():
		// Shutdown gave up on this run; the job was pushed back to its queue.
		ev.Outcome = OutcomeRequeued
	case err == nil:
		s.stats.processed(1)
		s.acker.ack(u)
		ev.Outcome = OutcomeSucceeded
	case s.jobCtx.Err() != nil && errors.Is(err, context.Canceled):
		// Cancelled by shutdown: leave it in the in-progress list, which Stop pushes back
		// to the queue. Not a failure.
		ev.Outcome = OutcomeRequeued
	default:
		ev.Outcome = s.fail(u, job, err)
	}
	s.observe(ev)
}

func (s *Server) observe(ev *JobEvent) {
	if len(s.observers) > 0 {
		s.observers.jobFinished(ev)
	}
}

// perform runs the middleware chain and the handler, turning a panic into a *PanicError.
func (s *Server) perform(job *Job) (err error) {
	name := job.HandlerName()
	s.mu.Lock()
	entry := s.handlers[name]
	s.mu.Unlock()
	ctx := withJob(s.jobCtx, job)
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	last := func(ctx context.Context) error {
		if entry == nil {
			return &NoHandlerError{Class: name, Identity: s.identity}
		}
		return runRunChain(ctx, entry.mws, job, func(ctx context.Context) (err error) {
			if err := RunStartHooks(ctx); err != nil {
				return err
			}
			return entry.h.Perform(ctx, job)
		})
	}
	return runRunChain(ctx, s.runMW, job, last)
}

type jobCtxKey struct{}

func withJob(ctx context.Context, job *Job) context.Context {
	return context.WithValue(ctx, jobCtxKey{}, job)
}

// JobFromContext returns the job a handler or run middleware is running, if any.
func JobFromContext(ctx context.Context) (*Job, bool) {
	j, ok := ctx.Value(jobCtxKey{}).(*Job)
	return j, ok
}

// errorClassOf names err for "error_class": the name an ErrorClasser chooses, else the Go
// type of the first error in the chain that is not a plain wrapper.
func errorClassOf(err error) string {
	var ec ErrorClasser
	if errors.As(err, &ec) {
		return ec.ErrorClass()
	}
	for e := err; e != nil; {
		t := fmt.Sprintf("%T", e)
		switch t {
		case "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
			next := errors.Unwrap(e)
			if next == nil {
				if j, ok := e.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
					next = j.Unwrap()[0]
				}
			}
			if next == nil {
				return t
			}
			e = next
			continue
		case "*sidekiq.DiscardError", "*sidekiq.RetryInError":
			if next := errors.Unwrap(e); next != nil {
				e = next
				continue
			}
		}
		return t
	}
	return "error"
}

// logFields describes a job for logs.
func logFields(job *Job, queue string, start time.Time, now time.Time) []zap.Field {
	return []zap.Field{
		zap.String("jid", job.JID),
		zap.String("class", job.HandlerName()),
		zap.String("queue", queue),
		zap.Duration("elapsed", now.Sub(start)),
	}
}
