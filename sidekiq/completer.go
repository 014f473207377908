package sidekiq

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// The completer is the one writer of outcomes. Workers hand it each finished job with its
// decision; it writes whatever has accumulated in a few calls: the acks of succeeded jobs
// (HDEL of their in-flight fields), the outcomes of the others (retry, schedule, dead,
// dropped: outcomeLua, which moves each job out of the in-flight hash and into its set in
// one step) and the jobs to push back. Under load one round trip settles many jobs; when
// idle a job is settled at once. Every write is safe to repeat, so a failed write is simply
// retried (with backoff) until it succeeds or the server stops. Until its write succeeds
// a finished job is still in the in-flight hash: a crash then runs it again (at least
// once), never loses it.
//
// Once a write succeeds the completer releases the jobs from the in-flight register, counts
// them in the statistics, logs them, tells the observers and calls OnDeath for the jobs
// that will never run again.
type completer struct {
	store       *store
	reg         *register
	stats       *stats
	observers   observers
	log         *jobLogger
	onDeath     func(ctx context.Context, job *Job, err error)
	deadMax     int
	deadTimeout time.Duration
	clock       Clock
	names       []string
	metrics     *execMetrics // nil: no Metrics tab to feed (Sidekiq 6)

	in     chan *completion
	closed chan struct{} // closed once the completer takes no more completions
	cancel context.CancelFunc
	done   chan struct{}
	carry  []*completion // what the loop had not written when it stopped
	deaths sync.WaitGroup
}

// completion is one job whose run (or non-run) is over.
type completion struct {
	u       *unit
	job     *Job // nil for an invalid payload and for a job requeued unstarted
	err     error
	d       decision
	ev      *JobEvent
	requeue bool // push it back to its queue now (fetched, never started, server quiet)
}

// completerParams are a completer's dependencies.
type completerParams struct {
	store       *store
	reg         *register
	stats       *stats
	observers   observers
	log         *jobLogger
	onDeath     func(ctx context.Context, job *Job, err error)
	deadMax     int
	deadTimeout time.Duration
	clock       Clock
	names       []string
	metrics     *execMetrics
	buffer      int
}

func newCompleter(p completerParams) *completer {
	return &completer{
		store: p.store, reg: p.reg, stats: p.stats, observers: p.observers, log: p.log,
		onDeath: p.onDeath, deadMax: p.deadMax, deadTimeout: p.deadTimeout, clock: p.clock, names: p.names,
		metrics: p.metrics,
		in:      make(chan *completion, p.buffer), closed: make(chan struct{}), done: make(chan struct{}),
	}
}

// complete hands over a finished job. After stop it drops it: the job's entry stays in the
// in-flight hash, where the end of the stop (or a recoverer) finds it.
func (c *completer) complete(x *completion) {
	select {
	case c.in <- x:
	case <-c.closed:
	}
}

// start runs the write loop until stop.
func (c *completer) start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	go c.loop(ctx)
}

func (c *completer) loop(ctx context.Context) {
	defer close(c.done)
	batch := make([]*completion, 0, 256)
	bo := newBackoff(20*time.Millisecond, 2*time.Second)
	for {
		select {
		case x := <-c.in:
			batch = append(batch, x)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case x := <-c.in:
				batch = append(batch, x)
			default:
				break drain
			}
		}
		for {
			err := c.write(ctx, batch)
			if err == nil {
				bo.reset()
				batch = batch[:0]
				break
			}
			if ctx.Err() != nil {
				c.carry = batch // stop writes them with its own deadline
				return
			}
			c.observers.redisError("complete", err)
			d := bo.next()
			c.log.Warn("writing finished jobs failed; retrying", logcap.Error(err), zap.Int("jobs", len(batch)), zap.Duration("in", d))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				c.carry = batch
				return
			}
		}
	}
}

// stop ends the loop, then writes everything still pending, trying until ctx ends, and
// waits (also until ctx ends) for the OnDeath calls in progress.
func (c *completer) stop(ctx context.Context) {
	c.cancel()
	if !waitDone(ctx, c.done) {
		close(c.closed)
		return // the loop is stuck in a write to a Redis that hangs; its jobs stay in flight
	}
	close(c.closed)
	batch := c.carry
	for {
		select {
		case x := <-c.in:
			batch = append(batch, x)
			continue
		default:
		}
		break
	}
	bo := newBackoff(20*time.Millisecond, 500*time.Millisecond)
	for len(batch) > 0 {
		err := bounded(ctx, func(ctx context.Context) error { return c.write(ctx, batch) })
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			c.log.Warn("finished jobs could not be written before the stop's deadline; they stay in progress and run again",
				logcap.Error(err), zap.Int("jobs", len(batch)))
			break
		}
		select {
		case <-time.After(bo.next()):
		case <-ctx.Done():
		}
	}
	deaths := make(chan struct{})
	go func() { c.deaths.Wait(); close(deaths) }()
	select {
	case <-deaths:
	case <-ctx.Done():
	}
}

// write settles a batch: acks, outcomes and requeues, then the bookkeeping of each job.
func (c *completer) write(ctx context.Context, batch []*completion) error {
	var acks []string
	var outs []outcomeWrite
	var requeues []*unit
	for _, x := range batch {
		switch {
		case x.requeue:
			requeues = append(requeues, x.u)
		case x.d.outcome == OutcomeSucceeded:
			acks = append(acks, x.u.field)
		case x.d.outcome == OutcomeRequeued:
			// Left in the in-flight hash: the stop pushes it back.
		default:
			outs = append(outs, outcomeWrite{field: x.u.field, target: target(x.d.outcome), at: x.d.at, payload: x.d.payload})
		}
	}
	if len(acks) > 0 {
		if err := c.store.ack(ctx, acks); err != nil {
			return err
		}
	}
	if len(outs) > 0 {
		now := c.clock.Now()
		if err := c.store.writeOutcomes(ctx, outs, now.Add(-c.deadTimeout), c.deadMax); err != nil {
			return err
		}
	}
	if len(requeues) > 0 {
		if _, err := c.store.requeue(ctx, requeues); err != nil {
			return err
		}
	}
	for _, x := range batch {
		if x.requeue || x.d.outcome != OutcomeRequeued {
			c.reg.release(x.u)
		}
		c.settled(x)
	}
	return nil
}

// target names a decided outcome's destination for outcomeLua.
func target(o Outcome) byte {
	switch o {
	case OutcomeRetried:
		return 'r'
	case OutcomeRescheduled:
		return 's'
	case OutcomeDead:
		return 'd'
	}
	return 'x'
}

// settled does what follows a written outcome.
func (c *completer) settled(x *completion) {
	d := x.d
	switch d.outcome {
	case OutcomeSucceeded, OutcomeRescheduled:
		c.stats.processed(1)
	case OutcomeRetried, OutcomeDead, OutcomeDropped:
		if d.failed {
			c.stats.failed(1)
		} else {
			c.stats.processed(1)
		}
	}
	if c.metrics != nil && x.job != nil && x.ev != nil {
		switch d.outcome {
		case OutcomeSucceeded, OutcomeRescheduled, OutcomeRetried, OutcomeDead, OutcomeDropped:
			c.metrics.record(metricsClass(x.job), x.ev.Duration, d.failed)
		}
	}
	if d.outcome != OutcomeSucceeded {
		c.logOutcome(x)
	}
	if len(c.observers) > 0 && x.ev != nil {
		c.observers.jobFinished(x.ev)
	}
	if x.job != nil && c.onDeath != nil && (d.outcome == OutcomeDead || d.outcome == OutcomeDropped) {
		c.deaths.Add(1)
		go func() {
			defer c.deaths.Done()
			defer func() {
				if r := recover(); r != nil {
					c.log.Error("OnDeath panicked", zap.Any("panic", r))
				}
			}()
			c.onDeath(context.Background(), x.job, x.err)
		}()
	}
}

func (c *completer) logOutcome(x *completion) {
	d := x.d
	log := c.log.forJob(x.job, c.names[x.u.q])
	if d.warn != nil {
		log.Warn("the failure was recorded without its backtrace", logcap.Error(d.warn))
	}
	switch {
	case x.requeue:
		log.Debug("job fetched after quiet began; pushed back to its queue")
	case d.outcome == OutcomeRequeued:
		log.Info("job interrupted by the stop; it goes back to its queue")
	case x.job == nil:
		log.Error("invalid job payload moved to the dead set", logcap.Error(x.err), zap.Int("bytes", len(x.u.raw)))
	case d.outcome == OutcomeRescheduled:
		log.Debug("job rescheduled", zap.Time("at", d.at), logcap.Error(x.err))
	case d.outcome == OutcomeRetried:
		log.Info("job failed; retry scheduled", zap.Int("retry_count", *x.job.RetryCount), zap.Time("retry_at", d.at), logcap.Error(x.err))
	case d.outcome == OutcomeDead:
		log.Warn("job failed for the last time and is in the dead set", logcap.Error(x.err))
	case d.outcome == OutcomeDropped && !x.job.Retry.Enabled():
		log.Warn("job failed and is dropped (retry: false)", logcap.Error(x.err))
	case d.outcome == OutcomeDropped:
		log.Warn("job failed for the last time and is dropped (dead: false)", logcap.Error(x.err))
	}
}
