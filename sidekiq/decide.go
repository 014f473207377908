package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// How a finished run becomes an outcome: decide is a pure function of the job, the
// handler's error, the handler's options and the time. It changes nothing outside the job
// it is given (whose error fields it sets, as Sidekiq's retry handler does) and touches no
// Redis; the completer writes what it decides.

// maxErrorMessage is how much of an error message is kept, as Sidekiq.
const maxErrorMessage = 10000

// maxRetryDelay caps any wait before a retry. Sidekiq's count⁴ reaches it around retry 300
// (a Duration would overflow at 310); a job that allows that many retries waits this long
// between the later ones, never a negative time.
const maxRetryDelay = 100 * 365 * 24 * time.Hour

// maxDelayCount is the largest retry count DefaultRetryDelay computes with: 300⁴ s is 257
// years, already beyond maxRetryDelay.
const maxDelayCount = 300

// DefaultRetryDelay is Sidekiq's delay before retry count+1: count⁴ + 15 seconds plus a
// jitter of rand(10)·(count+1) seconds (Sidekiq 6.2.2 to 7.3). It never overflows: counts
// beyond 300 wait as long as 300 (about 257 years, longer than maxRetryDelay), and a
// negative count (a hostile payload) counts as 0.
func DefaultRetryDelay(count int, _ error, _ *Job) time.Duration {
	c := int64(min(max(count, 0), maxDelayCount))
	secs := c*c*c*c + 15 + randInt64n(10)*(c+1)
	return time.Duration(secs) * time.Second
}

// failurePolicy is the server-wide part of deciding what a failure means.
type failurePolicy struct {
	maxRetries int                                                // Config.MaxRetries
	retryDelay func(count int, err error, job *Job) time.Duration // Config.RetryDelay, or nil
	format     TimeFormat
	version    SidekiqVersion // decides Sidekiq's default delay
}

// decideInput is everything decide looks at.
type decideInput struct {
	job      *Job
	queue    string // the queue the job was fetched from
	err      error  // what the chain returned
	stopping bool   // the server's shutdown deadline cancelled the job's context
	opts     *handlerOptions
	policy   *failurePolicy
	now      time.Time
}

// decision is what a run comes to.
type decision struct {
	outcome Outcome
	at      time.Time // when a retried or rescheduled job is due; when a dead one died
	payload []byte    // the rewritten job, for the retry, schedule or dead set
	failed  bool      // counts as a failure in Sidekiq's statistics
	warn    error     // something to log that did not change the decision
}

// decide turns one run into an outcome.
func decide(in decideInput) decision {
	err, job := in.err, in.job
	if err == nil {
		return decision{outcome: OutcomeSucceeded}
	}
	if in.stopping && errors.Is(err, context.Canceled) {
		// Cancelled by shutdown: the job goes back to its queue. Not a failure.
		return decision{outcome: OutcomeRequeued}
	}
	var rin *RetryInError
	if errors.As(err, &rin) {
		// Not a failure: back to the schedule, nothing recorded on the job.
		job.EnqueuedAt = time.Time{}
		at := in.now.Add(min(max(rin.Delay, 0), maxRetryDelay))
		return decision{outcome: OutcomeRescheduled, at: at, payload: job.AppendJSON(nil, in.policy.format)}
	}

	d := decision{failed: true, at: in.now}
	d.warn = recordError(job, err, in.now, in.queue)
	count := *job.RetryCount
	maxRetries := in.policy.maxRetries
	if in.opts != nil && in.opts.maxRetries >= 0 {
		maxRetries = in.opts.maxRetries
	}
	switch {
	case !job.Retry.Enabled():
		// "retry": false: dropped, as Sidekiq drops it.
		d.outcome = OutcomeDropped
	case errors.Is(err, ErrDiscard) || count >= job.Retry.Max(maxRetries) || retryForExpired(job, in.now):
		if job.BuryOnFailure() {
			d.outcome = OutcomeDead
			d.payload = job.AppendJSON(nil, in.policy.format)
		} else {
			d.outcome = OutcomeDropped
		}
	default:
		d.outcome = OutcomeRetried
		d.at = in.now.Add(retryDelay(in, count))
		d.payload = job.AppendJSON(nil, in.policy.format)
	}
	return d
}

// retryDelay picks the wait before the next retry: the handler's, else the server's,
// else Sidekiq's (of the fleet's version); always positive and at most maxRetryDelay.
func retryDelay(in decideInput, count int) time.Duration {
	var d time.Duration
	if in.opts != nil && in.opts.retryDelay != nil {
		d = in.opts.retryDelay(count, in.err, in.job)
	}
	if d <= 0 && in.policy.retryDelay != nil {
		d = in.policy.retryDelay(count, in.err, in.job)
	}
	if d <= 0 {
		d = in.policy.version.retryDelay(count, in.err, in.job)
	}
	return min(d, maxRetryDelay)
}

// retryForExpired applies "retry_for" (seconds after the first failure) as Sidekiq 7.1.3+.
func retryForExpired(job *Job, now time.Time) bool {
	var secs float64
	if ok, err := job.Get("retry_for", &secs); !ok || err != nil || secs <= 0 || job.FailedAt.IsZero() {
		return false
	}
	return now.After(job.FailedAt.Add(time.Duration(min(secs, maxRetryDelay.Seconds()) * float64(time.Second))))
}

// recordError sets the error fields exactly as Sidekiq's retry handler does. It returns an
// error only when the backtrace could not be encoded (the job is still recorded).
func recordError(job *Job, err error, now time.Time, queue string) error {
	job.Queue = queue
	if job.RetryQueue != "" {
		job.Queue = job.RetryQueue
	}
	msg := err.Error()
	if d, ok := err.(*DiscardError); ok && d.Err != nil {
		// The Web UI shows the cause, as Ruby shows the exception's own message.
		msg = d.Err.Error()
	}
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
		for !utf8.ValidString(msg) && len(msg) > 0 {
			msg = msg[:len(msg)-1]
		}
	}
	job.ErrorMessage = msg
	job.ErrorClass = errorClassOf(err)
	if job.RetryCount == nil || *job.RetryCount < 0 {
		zero := 0
		job.RetryCount = &zero
		job.FailedAt = now
	} else {
		n := *job.RetryCount
		if n < maxRetryCount {
			n++
		}
		job.RetryCount = &n
		job.RetriedAt = now
	}
	if lines := backtraceLines(job, err); lines != nil {
		if err := job.SetErrorBacktrace(lines); err != nil {
			return fmt.Errorf("encoding error_backtrace: %w", err)
		}
	}
	return nil
}

// maxRetryCount is where retry_count stops growing, so a hostile count cannot overflow.
const maxRetryCount = 1 << 30

// backtraceLines returns the lines to store in error_backtrace when the job's "backtrace"
// option asks for them (true: all, N: the first N), or nil.
func backtraceLines(job *Job, err error) []string {
	raw, ok := job.Extra["backtrace"]
	if !ok {
		return nil
	}
	limit := -1
	switch jsonwire.KindOf(raw) {
	case jsonwire.Bool:
		if raw[0] != 't' {
			return nil
		}
	case jsonwire.Number:
		n, ok := parseIntegral(raw)
		if !ok || n <= 0 {
			return nil
		}
		limit = n
	default:
		return nil
	}
	var lines []string
	var pe *PanicError
	if errors.As(err, &pe) {
		for _, l := range strings.Split(strings.TrimSpace(string(pe.Stack)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
	} else {
		for e := err; e != nil; e = errors.Unwrap(e) {
			lines = append(lines, fmt.Sprintf("%T: %s", e, e.Error()))
		}
	}
	if limit > 0 && len(lines) > limit {
		lines = lines[:limit]
	}
	return lines
}

// errorClassOf names err for "error_class", the class the Retries and Dead pages show:
//
//   - the name an ErrorClasser in the chain chooses;
//   - "Ferry::Timeout" or "Ferry::Canceled" for a context's deadline or cancellation;
//   - else the declared type of the first error in the chain that is not a plain
//     wrapper (fmt.Errorf's %w, errors.Join, Discard, RetryIn, any unexported wrapping
//     type), as package.Type ("json.SyntaxError", "pgconn.PgError");
//   - else "Ferry::Error" (errors.New, fmt.Errorf without %w, unexported types).
func errorClassOf(err error) string {
	var ec ErrorClasser
	if errors.As(err, &ec) {
		return ec.ErrorClass()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "Ferry::Timeout"
	case errors.Is(err, context.Canceled):
		return "Ferry::Canceled"
	}
	for e := err; e != nil; {
		switch e.(type) {
		case *DiscardError, *RetryInError:
			if next := errors.Unwrap(e); next != nil {
				e = next
				continue
			}
			return "Ferry::Error"
		}
		name, exported := declaredName(e)
		if exported {
			return name
		}
		next := errors.Unwrap(e)
		if next == nil {
			if j, ok := e.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
				next = j.Unwrap()[0]
			}
		}
		if next == nil {
			return "Ferry::Error"
		}
		e = next
	}
	return "Ferry::Error"
}

// declaredName is package.Type of e's type (pointers followed), and whether the type is
// exported.
func declaredName(e error) (string, bool) {
	t := reflect.TypeOf(e)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	if name == "" || !unicode.IsUpper([]rune(name)[0]) {
		return "", false
	}
	if pkg := path.Base(t.PkgPath()); pkg != "." && pkg != "" {
		return pkg + "." + name, true
	}
	return name, true
}

// annotateInvalid adds error_class, error_message, failed_at and retry_count to a payload
// that is a JSON object (dropping any earlier values of those keys), so the dead set says
// why it is there. Anything else is returned unchanged.
func annotateInvalid(raw []byte, perr error, now time.Time) []byte {
	out := make([]byte, 0, len(raw)+200)
	out = append(out, '{')
	err := jsonwire.ScanObject(raw, func(k, v []byte) error {
		switch string(k) {
		case `"error_class"`, `"error_message"`, `"failed_at"`, `"retry_count"`, `"retried_at"`:
			return nil
		}
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
		out = append(out, ',')
		return nil
	})
	if err != nil {
		return raw
	}
	out = append(out, `"error_class":"Ferry::InvalidPayload","error_message":`...)
	out = jsonwire.AppendString(out, perr.Error())
	out = append(out, `,"failed_at":`...)
	out = jsonwire.AppendFloat(out, epochSeconds(now))
	out = append(out, `,"retry_count":0}`...)
	return out
}
