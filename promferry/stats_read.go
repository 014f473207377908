package promferry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/sidekiq"
)

// statsSnapshot is what one refresh read.
type statsSnapshot struct {
	at                     time.Time
	queues                 []queueStat
	queueCount             int64
	retry, scheduled, dead int64
	processes, busy        int64
	processed, failed      int64
}

type queueStat struct {
	label   string
	size    int64
	latency time.Duration
}

// maxBusy clamps a process's busy count (a number another process wrote).
const maxBusy = 1 << 20

// refresh reads the figures in one pipelined round trip (two on the first call, which
// finds the queues and processes first). Called with c.mu held.
func (c *StatsCollector) refresh(ctx context.Context, now time.Time) (*statsSnapshot, error) {
	if !c.found {
		if err := c.discover(ctx); err != nil {
			return nil, err
		}
	}
	queues := c.queueNames()
	procs := c.processes
	k := c.keys

	p := c.rdb.Pipeline()
	queueCount := p.SCard(ctx, k.key("queues"))
	retry := p.ZCard(ctx, k.key("retry"))
	scheduled := p.ZCard(ctx, k.key("schedule"))
	dead := p.ZCard(ctx, k.key("dead"))
	processed := p.Get(ctx, k.key("stat:processed"))
	failed := p.Get(ctx, k.key("stat:failed"))
	qscan, pscan := c.discoveryCmds(ctx, p)
	sizes := make([]*redis.IntCmd, len(queues))
	oldest := make([]*redis.StringCmd, len(queues))
	for i, q := range queues {
		sizes[i] = p.LLen(ctx, k.key("queue:"+q))
		oldest[i] = p.LIndex(ctx, k.key("queue:"+q), -1)
	}
	busy := make([]*redis.StringCmd, len(procs))
	for i, id := range procs {
		busy[i] = p.HGet(ctx, k.key(id), "busy")
	}
	_, err := p.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			return nil, fmt.Errorf("promferry: reading Sidekiq stats: %w", err) // no reply at all
		}
	}
	// A reply that is an error (WRONGTYPE on a key someone misused) spoils its own figure
	// only; the shared counters must be readable, though.
	for _, cmd := range []redis.Cmder{queueCount, retry, scheduled, dead} {
		if err := cmd.Err(); err != nil {
			return nil, fmt.Errorf("promferry: reading Sidekiq stats: %s: %w", cmd.Name(), err)
		}
	}
	s := &statsSnapshot{
		at:         now,
		queueCount: queueCount.Val(),
		retry:      retry.Val(),
		scheduled:  scheduled.Val(),
		dead:       dead.Val(),
		processed:  counterValue(processed),
		failed:     counterValue(failed),
	}
	seen := make(map[string]bool, len(queues))
	for i, q := range queues {
		label := labelValue(q)
		if seen[label] || sizes[i].Err() != nil {
			continue // two names cut to the same label, or not a list
		}
		seen[label] = true
		s.queues = append(s.queues, queueStat{label: label, size: sizes[i].Val(), latency: latencyOf(oldest[i], now)})
	}
	for _, b := range busy {
		v, err := b.Result()
		if err != nil {
			continue // the process's record expired: it is gone
		}
		s.processes++
		n, _ := strconv.ParseInt(v, 10, 64)
		s.busy += min(max(n, 0), maxBusy)
	}
	c.learn(qscan, pscan)
	return s, nil
}

// discover finds the queues and processes to read, for the first refresh.
func (c *StatsCollector) discover(ctx context.Context) error {
	p := c.rdb.Pipeline()
	qscan, pscan := c.discoveryCmds(ctx, p)
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("promferry: finding queues and processes: %w", err)
	}
	c.learn(qscan, pscan)
	return nil
}

// discoveryCmds adds to p the bounded scans that find queues and processes.
func (c *StatsCollector) discoveryCmds(ctx context.Context, p redis.Pipeliner) (qscan, pscan *redis.ScanCmd) {
	if !c.cfg.NoDiscovery {
		qscan = p.SScan(ctx, c.keys.key("queues"), 0, "", int64(c.cfg.MaxQueues))
	}
	pscan = p.SScan(ctx, c.keys.key("processes"), 0, "", int64(c.cfg.MaxProcesses))
	return qscan, pscan
}

// learn keeps what the scans found for the next refresh. SSCAN returns a whole small set at
// once and about COUNT members of a large one: either way at most the configured bounds
// are kept.
func (c *StatsCollector) learn(qscan, pscan *redis.ScanCmd) {
	if qscan != nil {
		if names, _, err := qscan.Result(); err == nil {
			slices.Sort(names)
			names = slices.Compact(names)
			c.queues = names[:min(len(names), c.cfg.MaxQueues)]
		}
	}
	if ids, _, err := pscan.Result(); err == nil {
		slices.Sort(ids)
		ids = slices.Compact(ids)
		c.processes = ids[:min(len(ids), c.cfg.MaxProcesses)]
	}
	c.found = true
}

// queueNames is the configured queues, then the discovered ones, at most MaxQueues.
func (c *StatsCollector) queueNames() []string {
	out := make([]string, 0, min(c.cfg.MaxQueues, len(c.cfg.Queues)+len(c.queues)))
	seen := make(map[string]bool, cap(out))
	for _, list := range [][]string{c.cfg.Queues, c.queues} {
		for _, q := range list {
			if len(out) == c.cfg.MaxQueues {
				return out
			}
			if q != "" && !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
		}
	}
	return out
}

// counterValue reads a stat:* counter: missing is 0, garbage is 0.
func counterValue(cmd *redis.StringCmd) int64 {
	n, err := cmd.Int64()
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// latencyOf is Sidekiq's Queue#latency: now minus the enqueued_at of the oldest job (the
// list's tail), 0 for an empty queue or a job without one.
func latencyOf(cmd *redis.StringCmd, now time.Time) time.Duration {
	raw, err := cmd.Result()
	if err != nil || raw == "" {
		return 0
	}
	job, err := sidekiq.ParseJobString(raw)
	if err != nil || job.EnqueuedAt.IsZero() {
		return 0
	}
	return max(now.Sub(job.EnqueuedAt), 0)
}
