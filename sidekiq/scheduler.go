package sidekiq

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// The scheduler moves due jobs from the retry and schedule sets onto their queues, as
// Sidekiq's poller does and alongside it. Polls are spread over the fleet: each process
// waits about PollInterval × (number of processes), randomised, so the fleet as a whole
// polls about every PollInterval and processes never poll in step. Each move is one Lua call
// per batch whose ZREM guard makes sure a job is moved by one process, once.
type scheduler struct {
	store    *store
	keys     keyspace
	log      *zap.Logger
	obs      observers
	clock    Clock
	format   TimeFormat
	interval time.Duration // Config.PollInterval
	quiet    <-chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// promoteBatch is how many due jobs one poll reads and moves per round trip.
const promoteBatch = 100

func newScheduler(st *store, keys keyspace, log *zap.Logger, obs observers, clock Clock, format TimeFormat, interval time.Duration, quiet <-chan struct{}) *scheduler {
	return &scheduler{store: st, keys: keys, log: log, obs: obs, clock: clock, format: format, interval: interval, quiet: quiet, done: make(chan struct{})}
}

func (s *scheduler) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	go s.loop(ctx)
}

// stop ends the loop and waits for it until ctx ends (a call to a Redis that hangs is
// left behind).
func (s *scheduler) stop(ctx context.Context) {
	s.cancel()
	waitDone(ctx, s.done)
}

func (s *scheduler) loop(ctx context.Context) {
	defer close(s.done)
	// A first poll soon after start, at a random moment within one interval.
	wait := time.Duration(randInt64n(int64(s.interval)))
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.quiet:
			return // a quiet process stops polling, as Sidekiq's does
		case <-time.After(wait):
		}
		for _, set := range []string{s.keys.Retry(), s.keys.Schedule()} {
			if _, err := s.enqueueDue(ctx, set); err != nil && ctx.Err() == nil {
				s.obs.redisError("schedule", err)
				s.log.Warn("moving due jobs failed", zap.String("set", set), logcap.Error(err))
			}
		}
		wait = s.pollWait(ctx)
	}
}

// pollWait is Sidekiq's random poll interval: with n processes registered, the average is
// PollInterval·n; below 10 processes the wait is avg·rand + avg/2, else avg·rand.
func (s *scheduler) pollWait(ctx context.Context) time.Duration {
	n, err := s.store.processCount(ctx)
	if err != nil || n < 1 {
		n = 1
	}
	avg := s.interval * time.Duration(n)
	r := time.Duration(randInt64n(int64(avg)))
	if n < 10 {
		return r + avg/2
	}
	return r
}

// enqueueDue moves every job of set whose time has come onto its queue and returns how
// many this process moved.
func (s *scheduler) enqueueDue(ctx context.Context, set string) (int, error) {
	total := 0
	for {
		now := s.clock.Now()
		members, err := s.store.dueMembers(ctx, set, now, promoteBatch)
		if err != nil || len(members) == 0 {
			return total, err
		}
		var queueKeys []string
		dest := map[string]int{}
		args := make([]any, 0, 4*len(members))
		for _, m := range members {
			job, perr := ParseJobString(m)
			if perr != nil {
				// Sidekiq's poller loses such a member (it is removed before validation);
				// Ferry buries it with the reason.
				args = append(args, m, annotateInvalid([]byte(m), perr, now), 0, formatScore(now))
				s.log.Error("invalid payload in "+set+" moved to the dead set", logcap.Error(perr))
				continue
			}
			if job.Queue == "" {
				job.Queue = "default"
			}
			if !job.Retry.IsSet() {
				job.Retry = RetryTrue()
			}
			delete(job.Extra, "at")
			job.EnqueuedAt = now
			k, ok := dest[job.Queue]
			if !ok {
				queueKeys = append(queueKeys, s.keys.Queue(job.Queue))
				k = len(queueKeys)
				dest[job.Queue] = k
			}
			args = append(args, m, job.AppendJSON(nil, s.format), k, job.Queue)
		}
		n, err := s.store.promote(ctx, set, queueKeys, args)
		if err != nil {
			return total, err
		}
		total += n
		if len(members) < promoteBatch {
			return total, nil
		}
	}
}
