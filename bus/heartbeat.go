package bus

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// heartbeatLockSeconds is queue-bus's Heartbeat.lock_seconds.
const heartbeatLockSeconds = 60

// heartbeatLockScript is queue-bus's Heartbeat.lock! in one call. The lock's value is the
// epoch second it expires at; it is taken when absent or expired. It returns the new
// expiry, or 0 when another process holds the lock.
var heartbeatLockScript = redis.NewScript(`
if redis.call('SETNX', KEYS[1], ARGV[2]) == 1 then return tonumber(ARGV[2]) end
local cur = tonumber(redis.call('GET', KEYS[1])) or 0
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return tonumber(ARGV[2])
`)

// heartbeat is queue-bus's QueueBus::Heartbeat.perform: under the heartbeat lock, it
// publishes heartbeat_minutes for every minute since the last one published
// (bus:heartbeat:timestamp), up to the current one, at most cfg.HeartbeatBackfill of them.
// It returns how many it published.
func (b *Bus) heartbeat(ctx context.Context) (int, error) {
	now := b.cfg.Clock.Now().Unix()
	until, err := heartbeatLockScript.Run(ctx, b.rdb, []string{b.keys.heartbeatLock()},
		now, now+heartbeatLockSeconds+2).Int64()
	if err != nil {
		return 0, err
	}
	runUntil := until - 2
	if runUntil < now {
		return 0, nil // another process is at it
	}
	published := 0
	for {
		now = b.cfg.Clock.Now().Unix()
		if now >= runUntil {
			break
		}
		minutes := now / 60
		last, err := b.savedMinute(ctx, minutes)
		if err != nil {
			return published, err
		}
		if last >= 0 {
			if minutes <= last {
				break
			}
			minutes = last + 1
		}
		if err := b.publishHeartbeat(ctx, minutes); err != nil {
			return published, err
		}
		published++
		if err := b.rdb.Set(ctx, b.keys.heartbeatTime(), minutes, 0).Err(); err != nil {
			return published, err
		}
		b.stats.heartbeats.Add(1) // counted once its minute is recorded, as Stats says
	}
	if err := b.rdb.Del(ctx, b.keys.heartbeatLock()).Err(); err != nil {
		return published, err
	}
	return published, nil
}

// savedMinute returns the last minute published, moved forward so that no more than
// HeartbeatBackfill minutes up to now are left to publish; -1 when none was ever published.
func (b *Bus) savedMinute(ctx context.Context, nowMinute int64) (int64, error) {
	v, err := b.rdb.Get(ctx, b.keys.heartbeatTime()).Result()
	if err == redis.Nil {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	last, _ := strconv.ParseInt(v, 10, 64) // Ruby's to_i: garbage reads as 0
	if limit := int64(b.cfg.HeartbeatBackfill); limit >= 0 && last < nowMinute-limit {
		last = nowMinute - limit
	}
	return last, nil
}

// publishHeartbeat publishes the heartbeat_minutes event of one minute, with queue-bus's
// attributes.
func (b *Bus) publishHeartbeat(ctx context.Context, minutes int64) error {
	seconds := minutes * 60
	t := time.Unix(seconds, 0).In(b.cfg.Location)
	a := &attrs{}
	a.setInt("epoch_seconds", seconds)
	a.setInt("epoch_minutes", minutes)
	a.setInt("epoch_hours", minutes/60)
	a.setInt("epoch_days", minutes/(60*24))
	a.setInt("minute", int64(t.Minute()))
	a.setInt("hour", int64(t.Hour()))
	a.setInt("day", int64(t.Day()))
	a.setInt("month", int64(t.Month()))
	a.setInt("year", int64(t.Year()))
	a.setInt("yday", int64(t.YearDay()))
	a.setInt("wday", int64(t.Weekday()))
	_, err := publishAttrs(ctx, b.client, HeartbeatEvent, a, publishSettings{hostname: b.cfg.Hostname, now: b.cfg.Clock.Now()})
	return err
}

// heartbeatService runs the heartbeat at the start of every minute while the server runs.
type heartbeatService struct {
	b      *Bus
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start implements sidekiq.Service.
func (h *heartbeatService) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel, h.done = cancel, make(chan struct{})
	go h.loop(runCtx)
	return nil
}

// Stop implements sidekiq.Service.
func (h *heartbeatService) Stop(ctx context.Context) error {
	if h.cancel == nil {
		return nil
	}
	h.once.Do(h.cancel)
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *heartbeatService) loop(ctx context.Context) {
	defer close(h.done)
	for {
		if n, err := h.b.heartbeat(ctx); err != nil && ctx.Err() == nil {
			h.b.log.Warn("bus: heartbeat failed", zap.Error(err))
		} else if n > 0 {
			h.b.log.Debug("bus: heartbeat published", zap.Int("minutes", n))
		}
		// Wake a little after the next minute starts.
		wait := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute + 500*time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
