package periodic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/sidekiq"
)

// Scheduler enqueues periodic jobs: those added with Add and, unless
// Config.OwnJobsOnly, every job defined in sidekiq-cron's storage by Ruby or by other Ferry
// processes. Run as many schedulers as you like, in as many processes, beside as many
// sidekiq-cron pollers: each tick of each job is enqueued once. Its methods are safe for
// concurrent use.
type Scheduler struct {
	rdb    redis.UniversalClient
	client *sidekiq.Client
	cfg    Config
	keys   keyspace
	log    *zap.Logger

	mu      sync.Mutex
	own     map[string]*ownJob
	cancel  context.CancelFunc
	done    chan struct{}
	wake    chan struct{} // a job was added: refresh now
	running bool

	loop loopState // owned by whoever runs passes: the Run goroutine, or a test
}

// New returns a Scheduler that reads and writes schedules in rdb and enqueues through
// client (its push middleware runs for every enqueue). cfg.Namespace must be client's
// namespace. A nil cfg means every default.
func New(rdb redis.UniversalClient, client *sidekiq.Client, cfg *Config) *Scheduler {
	c := cfg.withDefaults()
	return &Scheduler{
		rdb:    rdb,
		client: client,
		cfg:    c,
		keys:   newKeyspace(c.Namespace),
		log:    c.Logger,
		own:    make(map[string]*ownJob),
		wake:   make(chan struct{}, 1),
		loop:   newLoopState(),
	}
}

// ErrDuplicateJob is matched by Add's error for a name already added to this Scheduler.
var ErrDuplicateJob = errors.New("periodic: job already added")

// Add schedules j. It checks j at once: a spec that cannot be parsed, a missing name or
// class, arguments that cannot be encoded are refused with an error matching
// ErrInvalidJob (and ErrBadSpec for the spec) that says what is wrong. The job is
// written to Redis when the scheduler starts, or within moments if it runs already.
func (s *Scheduler) Add(j Job) error {
	o, err := compile(j, s.cfg.Location)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.own[j.Name]; ok {
		return &JobError{Name: j.Name, Err: ErrDuplicateJob}
	}
	s.own[j.Name] = o
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Attach makes srv start and stop sched with itself (srv.AddService): sched starts once
// srv is registered and stops as soon as srv quiets. Call it before srv starts.
func Attach(srv *sidekiq.Server, sched *Scheduler) { srv.AddService(sched) }

// Start runs the scheduler in a goroutine of its own and returns at once. Call Stop to
// end it.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("periodic: scheduler already started")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.done, s.running = cancel, make(chan struct{}), true
	go func(done chan struct{}) {
		defer close(done)
		_ = s.run(ctx)
	}(s.done)
	return nil
}

// Stop ends a started scheduler and waits for it, or for ctx. A tick being enqueued is
// finished first (a few Redis round trips).
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done, s.running = nil, nil, false
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("periodic: stop: %w", ctx.Err())
	}
}

// Run runs the scheduler until ctx ends, then returns ctx's error. Use it instead of
// Start and Stop, not with them.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("periodic: scheduler already started")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	return s.run(ctx)
}

// retryDelay is when a pass that hit a Redis error is tried again (its ticks stay due
// for Grace).
const retryDelay = time.Second

// run wakes at every tick of every job (and at every refresh) and runs a pass.
func (s *Scheduler) run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-s.wake:
			s.loop.dirty = true
		}
		// A pass in progress finishes even when ctx ends: a claimed tick is pushed.
		err := s.pass(context.WithoutCancel(ctx), s.cfg.Clock.Now())
		now := s.cfg.Clock.Now()
		wait := s.loop.nextWake(now, s.cfg.RefreshInterval).Sub(now)
		if err != nil {
			wait = retryDelay // Redis is failing: try again soon, but do not spin
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(wait, time.Millisecond))
	}
}
