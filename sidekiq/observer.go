package sidekiq

import (
	"time"
)

// Outcome is what became of one fetched job.
type Outcome uint8

const (
	// OutcomeSucceeded: the handler returned nil and the job was acknowledged.
	OutcomeSucceeded Outcome = iota + 1
	// OutcomeRetried: the handler failed and the job is in the retry set.
	OutcomeRetried
	// OutcomeDead: the job failed for the last time (or was discarded, or its payload is not
	// a runnable job) and is in the dead set.
	OutcomeDead
	// OutcomeDropped: the job failed and its payload says "retry": false or "dead": false,
	// so it is gone, as Sidekiq drops it.
	OutcomeDropped
	// OutcomeRescheduled: the handler returned RetryIn; the job waits in the schedule set
	// without a failure recorded.
	OutcomeRescheduled
	// OutcomeRequeued: the job did not finish because the server stopped; it goes back to
	// the head of its queue.
	OutcomeRequeued
)

// String names the outcome in lower case ("succeeded", "retried", ...), as metrics label it.
func (o Outcome) String() string {
	switch o {
	case OutcomeSucceeded:
		return "succeeded"
	case OutcomeRetried:
		return "retried"
	case OutcomeDead:
		return "dead"
	case OutcomeDropped:
		return "dropped"
	case OutcomeRescheduled:
		return "rescheduled"
	case OutcomeRequeued:
		return "requeued"
	}
	return "unknown"
}

// JobEvent describes one job a server ran (or tried to run), for observers.
type JobEvent struct {
	// Job is the parsed job; nil when the payload was not a runnable job (then Outcome is
	// OutcomeDead and Err a *PayloadError).
	Job *Job
	// Class is the handler name (the ActiveJob class for ActiveJob jobs), or "" for an
	// invalid payload.
	Class string
	// Queue is the queue the job was fetched from.
	Queue string
	// Outcome is what became of the job.
	Outcome Outcome
	// Err is the handler's error; nil when it succeeded.
	Err error
	// Started is when the job was taken by a worker (Config.Clock).
	Started time.Time
	// Duration is how long the middleware chain and handler ran (monotonic).
	Duration time.Duration
	// Latency is the time from the job's enqueued_at to Started; zero when the payload
	// has no enqueued_at.
	Latency time.Duration
}

// Observer hears what a Server does, for metrics. Its methods are called synchronously
// from the server's goroutines and must return quickly without blocking. Embed
// ObserverDefaults so that methods added in later versions have a no-op default.
type Observer interface {
	// JobFinished is called once per fetched job, after its outcome was written (or, for
	// OutcomeRequeued, decided).
	JobFinished(ev *JobEvent)
	// Fetched is called after each fetch that returned jobs, with how many.
	Fetched(queue string, jobs int)
	// RedisError is called when a Redis call of the server fails; op names the call
	// ("fetch", "ack", "outcome", "heartbeat", "schedule", "recover", ...).
	RedisError(op string, err error)
	isObserver()
}

// ObserverDefaults gives an Observer no-op methods; embed it.
type ObserverDefaults struct{}

// JobFinished does nothing.
func (ObserverDefaults) JobFinished(*JobEvent) {}

// Fetched does nothing.
func (ObserverDefaults) Fetched(string, int) {}

// RedisError does nothing.
func (ObserverDefaults) RedisError(string, error) {}

func (ObserverDefaults) isObserver() {}

// observers fans events out to every registered Observer.
type observers []Observer

func (os observers) jobFinished(ev *JobEvent) {
	for _, o := range os {
		o.JobFinished(ev)
	}
}

func (os observers) fetched(queue string, n int) {
	for _, o := range os {
		o.Fetched(queue, n)
	}
}

func (os observers) redisError(op string, err error) {
	for _, o := range os {
		o.RedisError(op, err)
	}
}
