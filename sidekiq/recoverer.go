package sidekiq

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// The recoverer returns the jobs of Ferry processes that died (kill -9, a lost machine) to
// the head of their queues. A process is dead when its heartbeat hash has expired
// (ProcessTTL after its last beat). Each in-progress list is emptied in the same Lua call
// that checks the owner is dead and pushes the jobs back, so a job is recovered once, by
// one process, even when many processes recover at the same time.
func (s *Server) recoverLoop() {
	t := time.NewTicker(s.cfg.RecoverInterval)
	defer t.Stop()
	for {
		if n, err := s.recoverOrphans(s.bgCtx); err != nil {
			if s.bgCtx.Err() == nil {
				s.observers.redisError("recover", err)
				s.log.Warn("recovering jobs of dead processes failed", zap.Error(err))
			}
		} else if n > 0 {
			s.log.Info("recovered jobs of dead processes", zap.Int("jobs", n))
		}
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C:
		}
	}
}

// recoverOrphans returns the in-progress jobs of every dead Ferry process to their queues.
func (s *Server) recoverOrphans(ctx context.Context) (int, error) {
	owners, err := s.rdb.HGetAll(ctx, s.keys.inprogressIndex()).Result()
	if err != nil {
		return 0, err
	}
	total := 0
	for list, owner := range owners {
		identity, queue, ok := parseInProgressOwner(owner)
		if !ok || identity == s.identity {
			continue
		}
		n, err := requeueScript.Run(ctx, s.rdb,
			[]string{list, s.keys.queue(queue), s.keys.inprogressIndex(), s.keys.process(identity)},
			list).Int()
		if err != nil {
			return total, err
		}
		if n > 0 {
			total += n
			s.log.Info("recovered jobs of a dead process",
				zap.String("dead_identity", identity), zap.String("queue", queue), zap.Int("jobs", n))
		}
	}
	return total, nil
}

// requeueOwn returns everything left in this process's in-progress lists to the head of
// their queues and unregisters the lists. Called by Stop once every job has finished, been
// acknowledged or been given up on.
func (s *Server) requeueOwn(ctx context.Context) (int, error) {
	total := 0
	for i := range s.specs {
		n, err := requeueScript.Run(ctx, s.rdb,
			[]string{s.pkeys[i], s.qkeys[i], s.keys.inprogressIndex()},
			s.pkeys[i]).Int()
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
