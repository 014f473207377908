package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/clock"
)

// ErrPushStopped is returned (or matched by errors.Is) when a push middleware stopped a push.
// Nothing was written to Redis.
var ErrPushStopped = errors.New("sidekiq: push stopped by middleware")

// PushStoppedError says why a push did not happen (nothing was written) and which job, if
// any, makes it unnecessary: a PushGuard whose key was held (Key names it, JID is the
// holder), or a push middleware that stopped the push (a unique lock naming the job that
// holds it). It matches ErrPushStopped, and whatever Cause matches.
type PushStoppedError struct {
	// JID is the job that makes this push unnecessary, when there is one: for a held
	// guard, the jid stored in its key.
	JID string
	// Key is the guard key that was held (without namespace), when a PushGuard stopped
	// the push; empty otherwise.
	Key string
	// Reason says why the push was stopped.
	Reason string
	// Cause, when set, is a more specific error the stop stands for (for example a lock
	// package's sentinel), reached by errors.Is and errors.As.
	Cause error
}

func (e *PushStoppedError) Error() string {
	reason := e.Reason
	if reason == "" && e.Key != "" {
		reason = fmt.Sprintf("guard %q held", e.Key)
	}
	if e.JID != "" {
		return fmt.Sprintf("sidekiq: push stopped: %s (existing job %s)", reason, e.JID)
	}
	return "sidekiq: push stopped: " + reason
}

// Is matches ErrPushStopped.
func (e *PushStoppedError) Is(target error) bool { return target == ErrPushStopped }

// Unwrap returns Cause.
func (e *PushStoppedError) Unwrap() error { return e.Cause }

// ClientConfig configures a Client. The zero value (or nil) means every default.
type ClientConfig struct {
	// Namespace prefixes every key with "<Namespace>:", as redis-namespace did for Sidekiq 6
	// (values such as queue names are not prefixed). Default: none.
	Namespace string
	// SidekiqVersion is the Sidekiq generation of the fleet; Sidekiq8 makes TimeFormat
	// default to TimeMillis. Default: SidekiqAny.
	SidekiqVersion SidekiqVersion
	// TimeFormat is how payload timestamps are written. Default: TimeSeconds (float
	// seconds, readable by Sidekiq 6, 7 and 8), or TimeMillis with Sidekiq8.
	TimeFormat TimeFormat
	// BulkBatchSize is how many jobs PushBulk writes per MULTI/EXEC round trip.
	// Default: 1000.
	BulkBatchSize int
	// Logger receives warnings. Default: no logging.
	Logger *zap.Logger
	// Clock tells the time for created_at, enqueued_at and schedules. Default: the wall
	// clock. Tests may pass a fake.
	Clock Clock
}

// Clock tells the time. Tests inject a fake one (see the testutil package).
type Clock = clock.Clock

func (c *ClientConfig) withDefaults() ClientConfig {
	var out ClientConfig
	if c != nil {
		out = *c
	}
	if out.BulkBatchSize <= 0 {
		out.BulkBatchSize = 1000
	}
	out.TimeFormat = out.SidekiqVersion.timeFormat(out.TimeFormat)
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	if out.Clock == nil {
		out.Clock = clock.Real{}
	}
	return out
}

// Client pushes jobs into Redis in Sidekiq's format, for Ruby Sidekiq or a Ferry server to
// run. It is safe for concurrent use. It never closes the Redis client it was given.
type Client struct {
	rdb  redis.UniversalClient
	cfg  ClientConfig
	keys keyspace
	push []PushMiddleware
	// scriptCached is set once a guarded push has run guardedPushScript, so later guarded
	// pushes send EVALSHA instead of the whole script.
	scriptCached atomic.Bool
}

// NewClient returns a Client writing to rdb. A nil cfg means every default.
func NewClient(rdb redis.UniversalClient, cfg *ClientConfig) *Client {
	c := cfg.withDefaults()
	return &Client{rdb: rdb, cfg: c, keys: newKeyspace(c.Namespace)}
}

// Use adds middleware to every later push. Middleware that only acts on the run side is
// ignored here. Use is not safe to call concurrently with pushes: register middleware
// before sharing the Client.
func (c *Client) Use(mws ...Middleware) {
	push, _ := splitMiddleware(mws)
	c.push = append(c.push, push...)
}

// Push enqueues one job of the given Ruby class and returns its jid. args may be nil (an
// empty array is written). With In or At in the future, the job goes to the schedule set
// instead of its queue.
//
// If a push middleware stops the push, Push writes nothing and returns an error matching
// ErrPushStopped, with the jid of the existing job when the middleware named one.
func (c *Client) Push(ctx context.Context, class string, args []any, opts ...PushOption) (string, error) {
	s := collectPushOptions(opts)
	job, err := c.buildJob(class, args, &s)
	if err != nil {
		return "", err
	}
	ctx, runAt := c.schedule(ctx, &s)
	return c.pushBuilt(ctx, job, runAt)
}

// PushJob enqueues a job built by the caller (for example one read from an outbox table, or
// an ActiveJob envelope). Empty fields get defaults: a new jid, queue "default", retry true,
// created_at now. Options override the job's queue, retry and jid and may schedule it.
func (c *Client) PushJob(ctx context.Context, job *Job, opts ...PushOption) (string, error) {
	s := collectPushOptions(opts)
	job = job.Clone()
	job.raw = nil
	if err := c.fill(job, &s); err != nil {
		return "", err
	}
	ctx, runAt := c.schedule(ctx, &s)
	return c.pushBuilt(ctx, job, runAt)
}

// schedule returns when a push is due (zero: now) and a context that tells push middleware
// the delay (PushDelay).
func (c *Client) schedule(ctx context.Context, s *pushSettings) (context.Context, time.Time) {
	now := c.cfg.Clock.Now()
	runAt := s.runAt(now)
	return withPushDelay(ctx, runAt, now), runAt
}

func (c *Client) pushBuilt(ctx context.Context, job *Job, runAt time.Time) (string, error) {
	pushed := false
	err := runPushChain(ctx, c.push, job, func(ctx context.Context) error {
		pushed = true
		job.guards = pushGuardsFrom(ctx)
		if err := validateGuards(job.guards); err != nil {
			return err
		}
		held, err := c.write(ctx, []*Job{job}, runAt)
		if err != nil {
			return err
		}
		if held[0] != nil {
			return held[0]
		}
		return nil
	})
	switch {
	case err != nil:
		var stop *PushStoppedError
		if errors.As(err, &stop) {
			return stop.JID, err
		}
		return "", err
	case !pushed:
		return "", ErrPushStopped
	}
	return job.JID, nil
}

// PushBulk enqueues one job per element of argsList, all of the same class and options,
// writing them in MULTI/EXEC batches of BulkBatchSize (one round trip per batch, not per
// job). It returns the jids in argsList order; a job stopped by push middleware has an empty
// jid, as has a job whose PushGuard was held. On a Redis error the jobs of earlier batches
// stay pushed, and the error says how many were.
func (c *Client) PushBulk(ctx context.Context, class string, argsList [][]any, opts ...PushOption) ([]string, error) {
	s := collectPushOptions(opts)
	chainCtx, runAt := c.schedule(ctx, &s)
	jids := make([]string, len(argsList))
	batch := make([]*Job, 0, min(len(argsList), c.cfg.BulkBatchSize))
	batchIdx := make([]int, 0, cap(batch))
	pushedCount := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		held, err := c.write(ctx, batch, runAt)
		if err != nil {
			return fmt.Errorf("sidekiq: PushBulk: %d of %d jobs pushed before: %w", pushedCount, len(argsList), err)
		}
		for i, j := range batch {
			if held[i] == nil {
				jids[batchIdx[i]] = j.JID
			}
		}
		pushedCount += len(batch)
		batch, batchIdx = batch[:0], batchIdx[:0]
		return nil
	}
	for i, args := range argsList {
		job, err := c.buildJob(class, args, &s)
		if err != nil {
			return jids, fmt.Errorf("sidekiq: PushBulk: job %d: %w", i, err)
		}
		s.jid = "" // JID applies to the first job only
		accepted := false
		err = runPushChain(chainCtx, c.push, job, func(ctx context.Context) error {
			accepted = true
			job.guards = pushGuardsFrom(ctx)
			return validateGuards(job.guards)
		})
		if err != nil && !errors.Is(err, ErrPushStopped) {
			return jids, fmt.Errorf("sidekiq: PushBulk: job %d: %w", i, err)
		}
		if err != nil || !accepted {
			continue
		}
		batch = append(batch, job)
		batchIdx = append(batchIdx, i)
		if len(batch) >= c.cfg.BulkBatchSize {
			if err := flush(); err != nil {
				return jids, err
			}
		}
	}
	return jids, flush()
}

func (c *Client) buildJob(class string, args []any, s *pushSettings) (*Job, error) {
	raw, err := EncodeArgs(args)
	if err != nil {
		return nil, err
	}
	job := &Job{Class: class, Args: raw}
	return job, c.fill(job, s)
}

// fill applies options and defaults, as Sidekiq's normalize_item does.
func (c *Client) fill(job *Job, s *pushSettings) error {
	if err := checkCluster(c.rdb, c.cfg.Namespace); err != nil {
		return err
	}
	if job.Class == "" {
		return errors.New("sidekiq: push: class is empty")
	}
	if s.queue != "" {
		job.Queue = s.queue
	}
	if job.Queue == "" {
		job.Queue = "default"
	}
	if s.retry.IsSet() {
		job.Retry = s.retry
	}
	if !job.Retry.IsSet() {
		job.Retry = RetryTrue()
	}
	if s.jid != "" {
		job.JID = s.jid
	}
	if job.JID == "" {
		job.JID = NewJID()
	}
	if s.retryQueue != "" {
		job.RetryQueue = s.retryQueue
	}
	if job.CreatedAt.IsZero() {
		job.CreatedAt = c.cfg.Clock.Now()
	}
	for k, v := range s.extra {
		if k == "at" {
			return errors.New(`sidekiq: push: use In or At, not Extra("at")`)
		}
		if err := job.Set(k, v); err != nil {
			return err
		}
	}
	delete(job.Extra, "at")
	return nil
}

// write stores jobs in one MULTI/EXEC: LPUSH onto their queues (with enqueued_at set now)
// and SADD queues, or ZADD schedule at runAt (with no enqueued_at) when runAt is set. A job
// with PushGuards goes through guardedPushScript in the same round trip instead; held[i] is
// set when job i was not pushed because one of its guards was held.
//
// Guarded pushes send the script by EVALSHA once this Client has run it; if Redis has lost
// it (a restart, SCRIPT FLUSH), only those pushes are sent again by EVAL, which is safe
// because a NOSCRIPT reply means the script did nothing.
func (c *Client) write(ctx context.Context, jobs []*Job, runAt time.Time) (held []*PushStoppedError, err error) {
	now := c.cfg.Clock.Now()
	var guarded map[int]*guardedCall
	score := epochSeconds(runAt)
	bySha := c.scriptCached.Load()
	cmds, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		var members []redis.Z
		byQueue := make(map[string][]any, 1)
		var order []string
		for i, j := range jobs {
			if runAt.IsZero() {
				j.EnqueuedAt = now
			} else {
				j.EnqueuedAt = time.Time{}
			}
			payload := j.AppendJSON(nil, c.cfg.TimeFormat)
			switch {
			case len(j.guards) > 0:
				if guarded == nil {
					guarded = make(map[int]*guardedCall)
				}
				g := &guardedCall{}
				g.keys, g.args = c.guardArgs(j, payload, runAt, score)
				g.send(ctx, p, bySha)
				guarded[i] = g
			case !runAt.IsZero():
				members = append(members, redis.Z{Score: score, Member: payload})
			default:
				if _, ok := byQueue[j.Queue]; !ok {
					order = append(order, j.Queue)
				}
				byQueue[j.Queue] = append(byQueue[j.Queue], payload)
			}
		}
		if len(members) > 0 {
			p.ZAdd(ctx, c.keys.Schedule(), members...)
		}
		for _, q := range order {
			p.SAdd(ctx, c.keys.Queues(), q)
			p.LPush(ctx, c.keys.Queue(q), byQueue[q]...)
		}
		return nil
	})
	if err != nil && bySha && onlyNoScript(cmds) {
		c.scriptCached.Store(false)
		_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, g := range guarded {
				if redis.HasErrorPrefix(g.cmd.Err(), "NOSCRIPT") {
					g.send(ctx, p, false)
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("sidekiq: push: %w", err)
	}
	if len(guarded) > 0 {
		c.scriptCached.Store(true)
	}
	held = make([]*PushStoppedError, len(jobs))
	for i, g := range guarded {
		err := guardResult(jobs[i], g.cmd.Val())
		if err == nil {
			continue
		}
		var h *PushStoppedError
		if !errors.As(err, &h) {
			return nil, err
		}
		held[i] = h
	}
	return held, nil
}

// guardedCall is one guarded push of a write: its KEYS and ARGV, and its command.
type guardedCall struct {
	keys []string
	args []any
	cmd  *redis.Cmd
}

// send queues the call on p, by EVALSHA when bySha is set, otherwise by EVAL.
func (g *guardedCall) send(ctx context.Context, p redis.Pipeliner, bySha bool) {
	if bySha {
		g.cmd = guardedPushScript.queue(ctx, p, true, g.keys, g.args...)
	} else {
		g.cmd = guardedPushScript.queue(ctx, p, false, g.keys, g.args...)
	}
}

// onlyNoScript reports whether every failed command in cmds failed with NOSCRIPT.
func onlyNoScript(cmds []redis.Cmder) bool {
	failed := false
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			if !redis.HasErrorPrefix(err, "NOSCRIPT") {
				return false
			}
			failed = true
		}
	}
	return failed
}
