package sidekiq

import (
	"time"
)

// PushOption changes one push. The set is closed: only the functions of this package make
// options, so no option can be silently ignored.
type PushOption interface {
	applyPush(*pushSettings)
}

type pushSettings struct {
	queue      string
	at         time.Time
	in         time.Duration
	hasIn      bool
	retry      RetryPolicy
	jid        string
	retryQueue string
	extra      map[string]any
}

type pushOptionFunc func(*pushSettings)

func (f pushOptionFunc) applyPush(s *pushSettings) { f(s) }

// Queue sends the job to the named queue (default "default").
func Queue(name string) PushOption {
	return pushOptionFunc(func(s *pushSettings) { s.queue = name })
}

// In schedules the job to run d from now. A d of zero or less pushes it at once.
func In(d time.Duration) PushOption {
	return pushOptionFunc(func(s *pushSettings) { s.in, s.hasIn, s.at = d, true, time.Time{} })
}

// At schedules the job to run at t. A t not in the future pushes it at once.
func At(t time.Time) PushOption {
	return pushOptionFunc(func(s *pushSettings) { s.at, s.hasIn = t, false })
}

// Retry allows n retries before the job goes to the dead set ("retry": n). Retry(0) sends a
// failed job straight to the dead set.
func Retry(n int) PushOption {
	return pushOptionFunc(func(s *pushSettings) { s.retry = RetryN(n) })
}

// NoRetry drops the job when it fails, without retrying or burying it ("retry": false).
func NoRetry() PushOption {
	return pushOptionFunc(func(s *pushSettings) { s.retry = RetryFalse() })
}

// JID sets the job id instead of generating one. It is for idempotent producers (an outbox
// row, a replayed request); with PushBulk it applies to the first job only.
func JID(jid string) PushOption {
	return pushOptionFunc(func(s *pushSettings) { s.jid = jid })
}

// RetryQueue sends the job's retries to another queue ("retry_queue").
func RetryQueue(name string) PushOption {
	return pushOptionFunc(func(s *pushSettings) { s.retryQueue = name })
}

// Extra sets any other payload key, as sidekiq_options or Job.set do in Ruby: "backtrace",
// "tags", "dead", "unique_for", ... The value is encoded as JSON. Keys that have an option
// or a Job field of their own ("queue", "retry", "jid", ...) are refused by the push.
func Extra(key string, value any) PushOption {
	return pushOptionFunc(func(s *pushSettings) {
		if s.extra == nil {
			s.extra = make(map[string]any, 2)
		}
		s.extra[key] = value
	})
}

func collectPushOptions(opts []PushOption) pushSettings {
	var s pushSettings
	for _, o := range opts {
		if o != nil {
			o.applyPush(&s)
		}
	}
	return s
}

// runAt returns when a job pushed now should run, or the zero time for "at once".
func (s *pushSettings) runAt(now time.Time) time.Time {
	at := s.at
	if s.hasIn {
		if s.in <= 0 {
			return time.Time{}
		}
		at = now.Add(s.in)
	}
	if at.IsZero() || !at.After(now) {
		return time.Time{}
	}
	return at
}
