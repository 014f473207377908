package sidekiq

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The scheduler moves due jobs from the retry and schedule sets onto their queues, as
// Sidekiq's poller does and alongside it. Polls are spread over the fleet: each process
// waits about PollInterval × (number of processes), randomised, so the fleet as a whole
// polls about every PollInterval and processes never poll in step. Each move is one Lua call
// per batch whose ZREM guard makes sure a job is moved by one process, once.

// promoteBatch is how many due jobs one poll reads and moves per round trip.
const promoteBatch = 100

func (s *Server) scheduleLoop() {
	// A first poll soon after start, at a random moment within one interval.
	wait := time.Duration(randInt64n(int64(s.cfg.PollInterval)))
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-s.quietCh:
			return // a quiet process stops polling, as Sidekiq's does
		case <-time.After(wait):
		}
		for _, set := range []string{s.keys.retry(), s.keys.schedule()} {
			if _, err := s.enqueueDue(s.bgCtx, set); err != nil && s.bgCtx.Err() == nil {
				s.observers.redisError("schedule", err)
				s.log.Warn("moving due jobs failed", zap.String("set", set), zap.Error(err))
			}
		}
		wait = s.pollWait(s.bgCtx)
	}
}

// pollWait is Sidekiq's random poll interval: with n processes registered, the average is
// PollInterval·n; below 10 processes the wait is avg·rand + avg/2, else avg·rand.
func (s *Server) pollWait(ctx context.Context) time.Duration {
	n, err := s.rdb.SCard(ctx, s.keys.processes()).Result()
	if err != nil || n < 1 {
		n = 1
	}
	avg := s.cfg.PollInterval * time.Duration(n)
	r := time.Duration(randInt64n(int64(avg)))
	if n < 10 {
		return r + avg/2
	}
	return r
}

// enqueueDue moves every job of set whose time has come onto its queue and returns how
// many this process moved.
func (s *Server) enqueueDue(ctx context.Context, set string) (int, error) {
	total := 0
	for {
		now := s.cfg.Clock.Now()
		members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: set, Start: "-inf", Stop: formatScore(now), ByScore: true, Count: promoteBatch,
		}).Result()
		if err != nil || len(members) == 0 {
			return total, err
		}
		keys := []string{set, s.keys.queues(), s.keys.dead()}
		dest := map[string]int{}
		args := make([]any, 0, 4*len(members))
		for _, m := range members {
			job, perr := ParseJobString(m)
			if perr != nil {
				// Sidekiq's poller loses such a member (it is removed before validation);
				// Ferry buries it with the reason.
				args = append(args, m, annotateInvalid([]byte(m), perr, now), 0, formatScore(now))
				s.log.Error("invalid payload in "+set+" moved to the dead set", zap.Error(perr))
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
				keys = append(keys, s.keys.queue(job.Queue))
				k = len(keys) - 3
				dest[job.Queue] = k
			}
			args = append(args, m, job.AppendJSON(nil, s.cfg.TimeFormat), k, job.Queue)
		}
		n, err := promoteScript.Run(ctx, s.rdb, keys, args...).Int()
		if err != nil {
			return total, err
		}
		total += n
		if len(members) < promoteBatch {
			return total, nil
		}
	}
}
