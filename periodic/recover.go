package periodic

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// recoverBatch is how many pending claims one pass recovers at most.
const recoverBatch = 100

// pending is a claim in Ferry's pending set: a tick claimed whose push is not confirmed.
type pending struct {
	Name string `json:"name"`
	Tick int64  `json:"tick"`
}

// pendingMember is the pending set's member for a tick of a job.
func pendingMember(name string, tick time.Time) string {
	return mustJSON(pending{Name: name, Tick: tick.Unix()})
}

// recoverPending pushes the ticks that were claimed at least RecoverAfter ago and are
// still pending: their claimer died between claim and push, or Redis failed it. The push
// guard of each tick makes this push a no-op when the first push did happen.
func (s *Scheduler) recoverPending(ctx context.Context, now time.Time) error {
	members, err := s.rdb.ZRangeByScoreWithScores(ctx, s.keys.pending(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.Add(-s.cfg.RecoverAfter).UnixMilli(), 10), Count: recoverBatch,
	}).Result()
	if err != nil {
		return fmt.Errorf("periodic: reading pending claims: %w", err)
	}
	for _, z := range members {
		member, _ := z.Member.(string)
		var p pending
		if err := json.Unmarshal([]byte(member), &p); err != nil || p.Name == "" || p.Tick <= 0 {
			s.log.Warn("periodic: dropping an unreadable pending claim", logcap.String("member", member))
			s.dropPending(ctx, member)
			continue
		}
		claimed := time.UnixMilli(int64(z.Score))
		e := s.loop.entries[p.Name]
		switch {
		case now.Sub(claimed) > maxPendingAge:
			s.log.Warn("periodic: dropping a claim too old to push safely",
				logcap.String("job", p.Name), zap.Time("tick", time.Unix(p.Tick, 0)))
			s.dropPending(ctx, member)
			continue
		case e == nil:
			s.log.Warn("periodic: dropping the claim of a job that no longer exists or cannot run",
				logcap.String("job", p.Name), zap.Time("tick", time.Unix(p.Tick, 0)))
			s.dropPending(ctx, member)
			continue
		}
		s.log.Info("periodic: pushing a claimed tick whose push was interrupted",
			logcap.String("job", p.Name), zap.Time("tick", time.Unix(p.Tick, 0)))
		s.push(ctx, e, time.Unix(p.Tick, 0).UTC(), now)
	}
	return nil
}
