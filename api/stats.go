package api

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stats is what Sidekiq's dashboard shows, read at one moment: Ruby's Sidekiq::Stats
// (fetch_stats! fast and slow) together with Stats#queue_summaries.
type Stats struct {
	// Processed and Failed are the totals in stat:processed and stat:failed. Processed
	// counts failures too, as Sidekiq does.
	Processed, Failed int64
	// Scheduled, Retries and Dead are the sizes of the schedule, retry and dead sets.
	Scheduled, Retries, Dead int64
	// Processes is the size of the processes set (Ruby's processes_size). It can include
	// processes that died less than a minute ago; Processes (the method) lists only live
	// ones.
	Processes int64
	// Busy is the number of jobs running now, the sum of every process's "busy" field
	// (Ruby's workers_size).
	Busy int64
	// Enqueued is the number of jobs waiting in every queue.
	Enqueued int64
	// DefaultQueueLatency is the latency of queue "default" (Ruby's
	// default_queue_latency), whether or not it is in the queues set.
	DefaultQueueLatency time.Duration
	// Queues holds every queue in the queues set, largest first (then by name), as
	// Stats#queue_summaries orders them.
	Queues []QueueStat
	// At is when the numbers were read.
	At time.Time
}

// QueueStat is one queue: Ruby's Stats::QueueSummary.
type QueueStat struct {
	// Name is the queue's name, without the "queue:" prefix.
	Name string
	// Size is the number of jobs waiting in it.
	Size int64
	// Latency is how long the oldest waiting job has waited: the time since its
	// enqueued_at (or created_at when it has none, as Sidekiq 8 reads it), zero for an
	// empty queue. Never negative: a producer clock ahead of this one reads as zero.
	Latency time.Duration
	// Paused reports whether the queue is in the "paused" set (Sidekiq Pro's queue
	// pausing; Sidekiq 8.1.2+ reads the same set).
	Paused bool
}

// Stats reads the dashboard numbers in two pipelined round trips whatever the number of
// queues and processes: first the counters, set sizes and the names of queues and
// processes; then every queue's size, oldest job and paused flag, and every process's
// busy count. It is cheap enough to call on every Prometheus scrape.
func (a *API) Stats(ctx context.Context) (*Stats, error) {
	k := a.keys
	var (
		processed, failed     *redis.StringCmd
		sched, retries, dead  *redis.IntCmd
		procNames, queueNames *redis.StringSliceCmd
		defaultOldest         *redis.StringCmd
	)
	_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		processed = p.Get(ctx, k.Stat("processed"))
		failed = p.Get(ctx, k.Stat("failed"))
		sched = p.ZCard(ctx, k.Set("schedule"))
		retries = p.ZCard(ctx, k.Set("retry"))
		dead = p.ZCard(ctx, k.Dead())
		procNames = p.SMembers(ctx, k.Processes())
		queueNames = p.SMembers(ctx, k.Queues())
		defaultOldest = p.LIndex(ctx, k.Queue("default"), -1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("api: reading stats: %w", err)
	}
	st := &Stats{
		Processed: counter(processed),
		Failed:    counter(failed),
		Scheduled: sched.Val(),
		Retries:   retries.Val(),
		Dead:      dead.Val(),
		Processes: int64(len(procNames.Val())),
	}
	procs := procNames.Val()
	queues := queueNames.Val()
	sort.Strings(queues)

	var (
		busy    []*redis.StringCmd
		summary []queueCmds
	)
	if len(procs)+len(queues) > 0 {
		_, err = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range procs {
				busy = append(busy, p.HGet(ctx, k.Process(id), "busy"))
			}
			summary = a.queueSummaryCmds(ctx, p, queues)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("api: reading queue sizes: %w", err)
		}
	}
	now := a.now()
	st.At = now
	for _, c := range busy {
		st.Busy += counter(c)
	}
	st.Queues = queueStats(now, summary)
	for _, q := range st.Queues {
		st.Enqueued += q.Size
	}
	if v, err := defaultOldest.Bytes(); err == nil {
		st.DefaultQueueLatency = jobLatency(now, v)
	}
	return st, nil
}

// queueCmds are the replies for one queue of a summary pipeline.
type queueCmds struct {
	name   string
	size   *redis.IntCmd
	oldest *redis.StringCmd
	paused *redis.BoolCmd
}

func (a *API) queueSummaryCmds(ctx context.Context, p redis.Pipeliner, names []string) []queueCmds {
	out := make([]queueCmds, len(names))
	for i, q := range names {
		out[i] = queueCmds{
			name:   q,
			size:   p.LLen(ctx, a.keys.Queue(q)),
			oldest: p.LIndex(ctx, a.keys.Queue(q), -1),
			paused: p.SIsMember(ctx, a.keys.Paused(), q),
		}
	}
	return out
}

// queueStats turns summary replies into QueueStats, largest first, then by name.
func queueStats(now time.Time, cmds []queueCmds) []QueueStat {
	out := make([]QueueStat, 0, len(cmds))
	for _, c := range cmds {
		q := QueueStat{Name: c.name, Size: c.size.Val(), Paused: c.paused.Val()}
		if v, err := c.oldest.Bytes(); err == nil {
			q.Latency = jobLatency(now, v)
		}
		out = append(out, q)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Size != out[j].Size {
			return out[i].Size > out[j].Size
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Queues lists every queue in the queues set with its size, latency and paused flag, in
// two round trips, sorted by name (Ruby's Sidekiq::Queue.all order).
func (a *API) Queues(ctx context.Context) ([]QueueStat, error) {
	names, err := a.rdb.SMembers(ctx, a.keys.Queues()).Result()
	if err != nil {
		return nil, fmt.Errorf("api: reading the queues set: %w", err)
	}
	sort.Strings(names)
	return a.queueStatsOf(ctx, names)
}

// Queue reads one queue's size, latency and paused flag in one round trip. A queue that
// does not exist reads as empty; Exists tells them apart.
func (a *API) Queue(ctx context.Context, name string) (QueueStat, error) {
	qs, err := a.queueStatsOf(ctx, []string{name})
	if err != nil {
		return QueueStat{}, err
	}
	return qs[0], nil
}

func (a *API) queueStatsOf(ctx context.Context, names []string) ([]QueueStat, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var cmds []queueCmds
	_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds = a.queueSummaryCmds(ctx, p, names)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("api: reading queues: %w", err)
	}
	out := queueStats(a.now(), cmds)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// QueueExists reports whether name is in the queues set or its list holds jobs.
func (a *API) QueueExists(ctx context.Context, name string) (bool, error) {
	var member *redis.BoolCmd
	var size *redis.IntCmd
	_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		member = p.SIsMember(ctx, a.keys.Queues(), name)
		size = p.LLen(ctx, a.keys.Queue(name))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("api: looking up queue: %w", err)
	}
	return member.Val() || size.Val() > 0, nil
}

// counter reads a counter reply: a missing key or a value that is not an integer is 0,
// as Ruby's to_i makes it.
func counter(c *redis.StringCmd) int64 {
	s, err := c.Result()
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// DayStat is one day of Sidekiq's history: the stat:processed:<date> and
// stat:failed:<date> counters (UTC dates).
type DayStat struct {
	// Date is the UTC day, "2006-01-02".
	Date string
	// Processed and Failed are that day's counts.
	Processed, Failed int64
}

// MaxHistoryDays is the longest history Sidekiq keeps (five years), and the most History
// reads.
const MaxHistoryDays = 5 * 365

// History reads the daily counters of the days days ending with the UTC day of end
// (today when end is zero), newest first, as Ruby's Sidekiq::Stats::History does; a day
// without a counter reads 0. days must be 1 to MaxHistoryDays. One pipelined round trip
// (GETs rather than MGET, so it also works on a Redis Cluster).
func (a *API) History(ctx context.Context, days int, end time.Time) ([]DayStat, error) {
	if days < 1 || days > MaxHistoryDays {
		return nil, fmt.Errorf("api: history of %d days: want 1 to %d", days, MaxHistoryDays)
	}
	if end.IsZero() {
		end = a.now()
	}
	end = end.UTC()
	day := time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC)
	out := make([]DayStat, days)
	procCmds := make([]*redis.StringCmd, days)
	failCmds := make([]*redis.StringCmd, days)
	_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range out {
			d := day.AddDate(0, 0, -i)
			out[i].Date = d.Format("2006-01-02")
			procCmds[i] = p.Get(ctx, a.keys.StatOn("processed", d))
			failCmds[i] = p.Get(ctx, a.keys.StatOn("failed", d))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("api: reading history: %w", err)
	}
	for i := range out {
		out[i].Processed = counter(procCmds[i])
		out[i].Failed = counter(failCmds[i])
	}
	return out, nil
}
