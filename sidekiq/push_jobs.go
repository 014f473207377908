package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoReply is matched by the error of a push that got no reply from Redis: the connection
// was refused, reset or timed out, or ctx ended. Such a job may or may not have been
// pushed. It is unlike a Redis error reply (a redis.Error, such as WRONGTYPE), which means
// Redis ran the push and refused it.
var ErrNoReply = errors.New("sidekiq: no reply from redis")

// A JobPush is one job for PushJobs: the job, when it is due, and guards for its push alone.
type JobPush struct {
	// Job is the job to push. It is not modified: PushJobs pushes a copy whose empty
	// fields get defaults, as PushJob does (a new jid, queue "default", retry true,
	// created_at now).
	Job *Job
	// At schedules the job: when it is after now the job goes to the schedule set,
	// otherwise (including the zero value) to its queue at once.
	At time.Time
	// Guards make this job's push conditional (see PushGuard). They are checked after the
	// guards already in PushJobs' ctx and before those added by push middleware; the
	// first held guard is the one reported.
	Guards []PushGuard
}

// PushResult is the outcome of one JobPush.
type PushResult struct {
	// JID is the jid of the job, filled in when the job had none. Empty only when the
	// job could not be built.
	JID string
	// Err is nil when the job was pushed. Otherwise it matches ErrPushStopped when push
	// middleware stopped the push or a guard was held (a *PushStoppedError; for a guard its
	// Key and holder's JID); it wraps a redis.Error when Redis refused the push; it
	// matches ErrNoReply when Redis did not answer; any other error comes from push
	// middleware or a bad job.
	Err error
}

// PushJobs pushes jobs built by the caller (for example rows read from an outbox table),
// each with its own schedule and guards, in one pipelined round trip: one guarded-push Lua
// call per job (EVALSHA, falling back to EVAL once if Redis lost the script), not a
// MULTI/EXEC, so a job Redis refuses does not stop the others. It returns one result per
// element of pushes, in order.
//
// Push middleware runs for each job before the round trip, as in PushBulk: a middleware
// may change the job, add guards or stop the push, but does not see the outcome of the
// write. The error is nil unless some job got no reply from Redis; it then matches
// ErrNoReply, and the results say which jobs got a reply and which did not.
func (c *Client) PushJobs(ctx context.Context, pushes []JobPush) ([]PushResult, error) {
	now := c.cfg.Clock.Now()
	results := make([]PushResult, len(pushes))
	var sends []pendingPush
	for i, p := range pushes {
		if p.Job == nil {
			results[i].Err = errors.New("sidekiq: PushJobs: nil job")
			continue
		}
		job := p.Job.Clone()
		job.raw = nil
		if err := c.fill(job, &pushSettings{}); err != nil {
			results[i].Err = err
			continue
		}
		results[i].JID = job.JID
		var runAt time.Time
		if p.At.After(now) {
			runAt = p.At
		}
		chainCtx := ctx
		if len(p.Guards) > 0 {
			chainCtx = WithPushGuards(ctx, p.Guards...)
		}
		chainCtx = withPushDelay(chainCtx, runAt, now)
		accepted := false
		err := runPushChain(chainCtx, c.push, job, func(ctx context.Context) error {
			accepted = true
			job.guards = pushGuardsFrom(ctx)
			return validateGuards(job.guards)
		})
		switch {
		case err != nil:
			results[i].Err = err
			continue
		case !accepted:
			results[i].Err = ErrPushStopped
			continue
		}
		sends = append(sends, pendingPush{index: i, slot: len(sends), job: job, runAt: runAt})
	}
	if len(sends) == 0 {
		return results, nil
	}
	for k := range sends {
		s := &sends[k]
		if s.runAt.IsZero() {
			s.job.EnqueuedAt = now
		} else {
			s.job.EnqueuedAt = time.Time{}
		}
		payload := s.job.AppendJSON(nil, c.cfg.TimeFormat)
		s.keys, s.args = c.guardArgs(s.job, payload, s.runAt, epochSeconds(s.runAt))
	}
	c.evalPushes(ctx, sends, false)
	var retry []pendingPush
	for _, s := range sends {
		if err := s.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, s)
		}
	}
	if len(retry) > 0 {
		c.evalPushes(ctx, retry, true)
		for _, s := range retry {
			sends[s.slot].cmd = s.cmd
		}
	}
	var noReply error
	for _, s := range sends {
		err := pushOutcome(s.job, s.cmd)
		if errors.Is(err, ErrNoReply) && noReply == nil {
			noReply = err
		}
		results[s.index].Err = err
	}
	return results, noReply
}

// pendingPush is one job of PushJobs that passed its middleware.
type pendingPush struct {
	index int // in PushJobs' argument
	slot  int // in the list of sends
	job   *Job
	runAt time.Time
	keys  []string
	args  []any
	cmd   *redis.Cmd
}

// evalPushes runs guardedPushScript for every push in one pipeline: by EVALSHA, or by EVAL
// (which also loads the script) when full is set.
func (c *Client) evalPushes(ctx context.Context, sends []pendingPush, full bool) {
	// Per-command errors are read from each command below.
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k := range sends {
			s := &sends[k]
			s.cmd = guardedPushScript.queue(ctx, p, !full, s.keys, s.args...)
		}
		return nil
	})
}

// pushOutcome reads one guarded push's reply: nil when pushed.
func pushOutcome(job *Job, cmd *redis.Cmd) error {
	err := cmd.Err()
	if err == nil {
		return guardResult(job, cmd.Val())
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return fmt.Errorf("sidekiq: push %s: %w", job.JID, err)
	}
	return fmt.Errorf("%w: push %s: %w", ErrNoReply, job.JID, err)
}
