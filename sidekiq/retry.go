package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// The failure path writes what Ruby Sidekiq writes, so the Web UI and Ruby processes
// treat Ferry's failures as their own: the retry set with Sidekiq's fields and delays, the
// dead set trimmed as Sidekiq trims it. Every outcome removes the job from the in-progress
// list in the same MULTI/EXEC that stores it elsewhere: a failed job is never in neither.

// maxErrorMessage is how much of an error message is kept, as Sidekiq.
const maxErrorMessage = 10000

// DefaultRetryDelay is Sidekiq's delay before retry count+1: count⁴ + 15 seconds plus a
// jitter of rand(10)·(count+1) seconds (Sidekiq 6.2.2 to 7.3).
func DefaultRetryDelay(count int, _ error, _ *Job) time.Duration {
	c := int64(count)
	secs := c*c*c*c + 15 + randInt64n(10)*(c+1)
	return time.Duration(secs) * time.Second
}

// fail records a failed run.
func (s *Server) fail(u *unit, job *Job, err error) Outcome {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.bgCtx), 10*time.Second)
	defer cancel()
	now := s.cfg.Clock.Now()
	queue := s.specs[u.q].name
	log := s.log.With(zap.String("jid", job.JID), zap.String("class", job.HandlerName()), zap.String("queue", queue))

	var rin *RetryInError
	if errors.As(err, &rin) {
		// Not a failure: back to the schedule, nothing recorded on the job.
		s.stats.processed(1)
		job.EnqueuedAt = time.Time{}
		at := now.Add(max(rin.Delay, 0))
		s.writeOutcome(ctx, u, log, func(p redis.Pipeliner) {
			p.ZAdd(ctx, s.keys.schedule(), redis.Z{Score: epochSeconds(at), Member: job.AppendJSON(nil, s.cfg.TimeFormat)})
		})
		log.Debug("job rescheduled", zap.Time("at", at), zap.Error(rin.Err))
		return OutcomeRescheduled
	}

	s.stats.failed(1)
	s.recordError(job, err, now, queue)
	count := *job.RetryCount

	handler := s.handlerFor(job)
	maxRetries := s.cfg.MaxRetries
	if mr, ok := handler.(MaxRetrier); ok && mr.MaxRetries() >= 0 {
		maxRetries = mr.MaxRetries()
	}
	discard := errors.Is(err, ErrDiscard)

	switch {
	case !job.Retry.Enabled():
		// "retry": false: dropped, as Sidekiq drops it; death callbacks still run.
		s.writeOutcome(ctx, u, log, func(redis.Pipeliner) {})
		log.Warn("job failed and is dropped (retry: false)", zap.Error(err))
		s.onDeath(ctx, job, err)
		return OutcomeDropped
	case discard || count >= job.Retry.Max(maxRetries) || s.retryForExpired(job, now):
		return s.bury(ctx, u, job, err, now, log)
	default:
		delay := time.Duration(0)
		if rd, ok := handler.(RetryDelayer); ok {
			delay = rd.RetryDelay(count, err, job)
		}
		if delay <= 0 {
			delay = s.retryDelay(count, err, job)
		}
		at := now.Add(delay)
		s.writeOutcome(ctx, u, log, func(p redis.Pipeliner) {
			p.ZAdd(ctx, s.keys.retry(), redis.Z{Score: epochSeconds(at), Member: job.AppendJSON(nil, s.cfg.TimeFormat)})
		})
		log.Info("job failed; retry scheduled", zap.Int("retry_count", count), zap.Time("retry_at", at), zap.Error(err))
		return OutcomeRetried
	}
}

func (s *Server) retryDelay(count int, err error, job *Job) time.Duration {
	if s.cfg.RetryDelay != nil {
		if d := s.cfg.RetryDelay(count, err, job); d > 0 {
			return d
		}
	}
	return DefaultRetryDelay(count, err, job)
}

// retryForExpired applies "retry_for" (seconds after the first failure) as Sidekiq 7.1.3+.
func (s *Server) retryForExpired(job *Job, now time.Time) bool {
	var secs float64
	if ok, err := job.Get("retry_for", &secs); !ok || err != nil || secs <= 0 || job.FailedAt.IsZero() {
		return false
	}
	return now.After(job.FailedAt.Add(time.Duration(secs * float64(time.Second))))
}

func (s *Server) handlerFor(job *Job) Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.handlers[job.HandlerName()]; e != nil {
		return e.h
	}
	return nil
}

// recordError sets the error fields exactly as Sidekiq's retry handler does.
func (s *Server) recordError(job *Job, err error, now time.Time, queue string) {
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
	if job.RetryCount == nil {
		zero := 0
		job.RetryCount = &zero
		job.FailedAt = now
	} else {
		n := *job.RetryCount + 1
		job.RetryCount = &n
		job.RetriedAt = now
	}
	if lines := backtraceLines(job, err); lines != nil {
		if err := job.SetErrorBacktrace(lines); err != nil {
			s.log.Warn("encoding error_backtrace failed", zap.Error(err))
		}
	}
}

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

// bury sends a job to the dead set, or drops it when its payload says "dead": false.
func (s *Server) bury(ctx context.Context, u *unit, job *Job, err error, now time.Time, log *zap.Logger) Outcome {
	outcome := OutcomeDead
	if !job.Dead() {
		outcome = OutcomeDropped
		s.writeOutcome(ctx, u, log, func(redis.Pipeliner) {})
		log.Warn("job failed for the last time and is dropped (dead: false)", zap.Error(err))
	} else {
		payload := job.AppendJSON(nil, s.cfg.TimeFormat)
		s.writeOutcome(ctx, u, log, func(p redis.Pipeliner) { s.addDead(ctx, p, payload, now) })
		log.Warn("job failed for the last time and is in the dead set", zap.Error(err))
	}
	s.onDeath(ctx, job, err)
	return outcome
}

// addDead adds a member to the dead set and trims it as Sidekiq does: by age, then to the
// newest DeadMaxJobs (ZREMRANGEBYRANK 0 -max, which keeps max-1, as Sidekiq).
func (s *Server) addDead(ctx context.Context, p redis.Pipeliner, member []byte, now time.Time) {
	dead := s.keys.dead()
	p.ZAdd(ctx, dead, redis.Z{Score: epochSeconds(now), Member: member})
	p.ZRemRangeByScore(ctx, dead, "-inf", formatScore(now.Add(-s.cfg.DeadTimeout)))
	p.ZRemRangeByRank(ctx, dead, 0, int64(-s.cfg.DeadMaxJobs))
}

func (s *Server) onDeath(ctx context.Context, job *Job, err error) {
	if s.cfg.OnDeath == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("OnDeath panicked", zap.Any("panic", r))
		}
	}()
	s.cfg.OnDeath(ctx, job, err)
}

// writeOutcome runs write and removes the job from the in-progress list in one MULTI/EXEC,
// retrying while Redis is unreachable: until it succeeds the job stays in the in-progress
// list, where a crash leaves it to be recovered and run again.
func (s *Server) writeOutcome(ctx context.Context, u *unit, log *zap.Logger, write func(redis.Pipeliner)) {
	defer s.reconcile.release(u)
	bo := newBackoff(50*time.Millisecond, 2*time.Second)
	for {
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			write(p)
			p.LRem(ctx, s.pkeys[u.q], 1, u.raw)
			return nil
		})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			log.Error("recording a job's outcome failed; it stays in progress and will be run again", zap.Error(err))
			s.reconcile.markSuspect()
			return
		}
		s.observers.redisError("outcome", err)
		d := bo.next()
		log.Warn("recording a job's outcome failed; retrying", zap.Error(err), zap.Duration("in", d))
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

// buryInvalid sends a payload that is not a runnable job straight to the dead set, with the
// reason in its error fields when it is a JSON object, or as it is otherwise (Sidekiq does
// the same with unparseable JSON). It is never retried: it could never succeed.
func (s *Server) buryInvalid(u *unit, perr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.bgCtx), 10*time.Second)
	defer cancel()
	now := s.cfg.Clock.Now()
	log := s.log.With(zap.String("queue", s.specs[u.q].name))
	member := annotateInvalid([]byte(u.raw), perr, now)
	s.writeOutcome(ctx, u, log, func(p redis.Pipeliner) { s.addDead(ctx, p, member, now) })
	log.Error("invalid job payload moved to the dead set", zap.Error(perr), zap.Int("bytes", len(u.raw)))
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
