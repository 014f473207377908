package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/clock"
)

// QueueMode chooses how a server picks the queue of its next job.
type QueueMode uint8

const (
	// QueueModeAuto is strict when no queue has a weight and weighted otherwise, as
	// Sidekiq decides. This is the default.
	QueueModeAuto QueueMode = iota
	// QueueModeStrict always takes from the first non-empty queue in the declared order:
	// a lower queue is never served while a higher one has work.
	QueueModeStrict
	// QueueModeWeighted is Sidekiq's weighted fetch: for each job, queue q comes first with
	// probability weight(q)/Σweights, and an empty queue's share goes to the others. Weights
	// must be positive.
	QueueModeWeighted
	// QueueModeRanked is TResque's priority order: queues are sorted by weight, highest
	// first (100 before 1 before -5000), ties in a random order fixed for the process's
	// lifetime, then served strictly. Weights may be negative; a queue with no weight has
	// weight 100.
	QueueModeRanked
)

// String names the mode.
func (m QueueMode) String() string {
	switch m {
	case QueueModeStrict:
		return "strict"
	case QueueModeWeighted:
		return "weighted"
	case QueueModeRanked:
		return "ranked"
	}
	return "auto"
}

// Config configures a Server. Every field has a default; a nil *Config means all of them.
type Config struct {
	// Concurrency is how many jobs run at once. Default: 10.
	Concurrency int
	// Queues lists the queues to work, in Sidekiq's -q notation: "name" or "name,weight".
	// Default: ["default"].
	Queues []string
	// QueueMode forces strict, weighted or ranked ordering. Default: QueueModeAuto (strict
	// without weights, weighted with any).
	QueueMode QueueMode
	// Prefetch is the most jobs beyond Concurrency that may be fetched ahead, so a server
	// running short jobs moves them in large batches. The server prefetches only what its
	// workers would finish within about 10 ms at the job durations it observes: short jobs
	// get the full amount, jobs of 100 ms or more get none, so slow jobs are never hoarded
	// away from other processes. Prefetched jobs are already in this process's in-progress
	// list (never only in memory) and go back to their queues on quiet or stop.
	// Default: 100. Set it to -1 to fetch only for free slots.
	Prefetch int
	// PrefetchBytes bounds the payload bytes of jobs fetched but not yet started, and the
	// size of each fetch's reply: a fetch stops taking jobs once it holds this many bytes
	// (it always takes at least one job). Big jobs are then fetched a few at a time instead
	// of Prefetch at a time. Default: 8 MiB.
	PrefetchBytes int64
	// QueueLimits caps how many jobs of a queue run at once, so slow jobs of one queue
	// cannot take every slot. Queues not listed are capped only by Concurrency. Default:
	// none.
	QueueLimits map[string]int
	// ShutdownTimeout is how long Run waits for running jobs when it stops, and how long a
	// stop asked for through the Web UI waits. Default: 25 s, as Sidekiq.
	ShutdownTimeout time.Duration
	// Namespace prefixes every key with "<Namespace>:" (redis-namespace, Sidekiq 6).
	// Default: none.
	Namespace string
	// SidekiqVersion is the Sidekiq generation of the fleet: it decides the default retry
	// jitter and, unless TimeFormat says otherwise, the payload timestamp format (see
	// SidekiqVersion). Default: SidekiqAny, what every version reads.
	SidekiqVersion SidekiqVersion
	// TimeFormat is how payload timestamps are written. Default: TimeSeconds, or
	// TimeMillis when SidekiqVersion is Sidekiq8.
	TimeFormat TimeFormat
	// Tag is shown beside the process in the Web UI. Default: "".
	Tag string
	// Labels are shown beside the process in the Web UI. Default: none.
	Labels []string
	// Hostname is the host part of the process identity. Default: $DYNO, else os.Hostname.
	Hostname string
	// HeartbeatInterval is how often the process record, running jobs and statistics are
	// written and remote signals read. Default: 5 s (Sidekiq 6; 7 and 8 use 10 s). It is
	// lowered to ProcessTTL/3 when longer, so a live process never looks dead.
	HeartbeatInterval time.Duration
	// ProcessTTL is how long the process record lives without a heartbeat; a process
	// silent for longer is dead and its in-progress jobs are recovered. Default: 60 s, what
	// the Web UI expects. Lower it only in tests (HeartbeatInterval follows it down).
	ProcessTTL time.Duration
	// RecoverInterval is how often in-progress jobs of dead processes are looked for.
	// Default: 30 s (and once at start).
	RecoverInterval time.Duration
	// FetchTimeout is how long an idle fetch blocks in Redis before looking again; it bounds
	// how long Stop waits for fetches to return. Default: 1 s.
	FetchTimeout time.Duration
	// PollInterval is the average time between two polls of the schedule and retry sets by
	// any process of the fleet (Sidekiq's average_scheduled_poll_interval): each process
	// waits about PollInterval × (number of processes). Default: 5 s. Sub-second values
	// are allowed.
	PollInterval time.Duration
	// MaxRetries is the number of retries of a job whose "retry" is true or absent. A class
	// may override it with WithMaxRetries. Default: 25.
	MaxRetries int
	// RetryDelay computes the wait before retry number count+1 (count is 0 after the first
	// failure). A class may override it with WithRetryDelay. Any delay is capped at 100
	// years. Default: DefaultRetryDelay, Sidekiq's count⁴ + 15 s plus a jitter of
	// rand(10)·(count+1) s.
	RetryDelay func(count int, err error, job *Job) time.Duration
	// DeadMaxJobs and DeadTimeout trim the dead set on every insert. Defaults: 10,000 jobs
	// and 180 days, as Sidekiq.
	DeadMaxJobs int
	DeadTimeout time.Duration
	// OnDeath is called when a job is buried in the dead set (Sidekiq's death handlers),
	// and also, unlike Sidekiq 6.x, when a job with "retry": false fails and is dropped, so
	// a Go service hears of every job that will never run again. Check job.Retry.Enabled()
	// to tell the two apart. Default: none.
	OnDeath func(ctx context.Context, job *Job, err error)
	// Logger receives the server's logs. Default: no logging.
	Logger *zap.Logger
	// Clock tells the time. Default: the wall clock; tests may pass a fake.
	Clock Clock
}

// Validate reports what Start would refuse in c: a queue entry that does not parse, a
// weight ≤ 0 in weighted mode, a queue limit that is not positive or names a queue not in
// Queues. A nil Config is valid.
func (c *Config) Validate() error {
	_, _, _, err := c.withDefaults()
	return err
}

// queueSpec is one parsed entry of Config.Queues.
type queueSpec struct {
	name      string
	weight    int
	hasWeight bool
	limit     int // 0 = no cap
}

const defaultRankedWeight = 100

func (c *Config) withDefaults() (Config, []queueSpec, QueueMode, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Concurrency <= 0 {
		out.Concurrency = 10
	}
	if out.Prefetch == 0 {
		out.Prefetch = 100
	}
	if out.Prefetch < 0 {
		out.Prefetch = 0
	}
	if out.PrefetchBytes <= 0 {
		out.PrefetchBytes = 8 << 20
	}
	if len(out.Queues) == 0 {
		out.Queues = []string{"default"}
	}
	if out.ShutdownTimeout <= 0 {
		out.ShutdownTimeout = 25 * time.Second
	}
	if out.HeartbeatInterval <= 0 {
		out.HeartbeatInterval = 5 * time.Second
	}
	if out.ProcessTTL <= 0 {
		out.ProcessTTL = 60 * time.Second
	}
	if limit := out.ProcessTTL / 3; out.HeartbeatInterval > limit {
		// The record must outlive a few beats: with a heartbeat slower than ProcessTTL a
		// live process would look dead between beats and other processes' recoverers would
		// take (and run again) the jobs it is running.
		out.HeartbeatInterval = max(limit, time.Millisecond)
	}
	if out.RecoverInterval <= 0 {
		out.RecoverInterval = 30 * time.Second
	}
	if out.FetchTimeout <= 0 {
		out.FetchTimeout = time.Second
	}
	if out.PollInterval <= 0 {
		out.PollInterval = 5 * time.Second
	}
	if out.MaxRetries <= 0 {
		out.MaxRetries = DefaultMaxRetries
	}
	if out.DeadMaxJobs <= 0 {
		out.DeadMaxJobs = 10000
	}
	if out.DeadTimeout <= 0 {
		out.DeadTimeout = 180 * 24 * time.Hour
	}
	out.TimeFormat = out.SidekiqVersion.timeFormat(out.TimeFormat)
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	if out.Clock == nil {
		out.Clock = clock.Real{}
	}
	if out.Hostname == "" {
		out.Hostname = os.Getenv("DYNO")
	}
	if out.Hostname == "" {
		out.Hostname, _ = os.Hostname()
	}
	specs, mode, err := parseQueues(out.Queues, out.QueueMode, out.QueueLimits)
	return out, specs, mode, err
}

// parseQueues reads Sidekiq's -q notation and settles the mode.
func parseQueues(entries []string, mode QueueMode, limits map[string]int) ([]queueSpec, QueueMode, error) {
	var specs []queueSpec
	seen := map[string]int{}
	anyWeight := false
	for _, e := range entries {
		name, w, hasW := strings.TrimSpace(e), 0, false
		if i := strings.LastIndexByte(e, ','); i >= 0 {
			n, err := strconv.Atoi(strings.TrimSpace(e[i+1:]))
			if err != nil {
				return nil, 0, fmt.Errorf("sidekiq: queue %q: weight is not an integer", e)
			}
			name, w, hasW = strings.TrimSpace(e[:i]), n, true
			anyWeight = true
		}
		if name == "" {
			return nil, 0, fmt.Errorf("sidekiq: queue %q: empty name", e)
		}
		if i, dup := seen[name]; dup {
			// A queue listed twice keeps its higher weight (TResque's rule; Sidekiq sums
			// repetitions, which a weight expresses better).
			if hasW && (!specs[i].hasWeight || w > specs[i].weight) {
				specs[i].weight, specs[i].hasWeight = w, true
			}
			continue
		}
		seen[name] = len(specs)
		specs = append(specs, queueSpec{name: name, weight: w, hasWeight: hasW})
	}
	if mode == QueueModeAuto {
		mode = QueueModeStrict
		if anyWeight {
			mode = QueueModeWeighted
		}
	}
	for i := range specs {
		s := &specs[i]
		switch mode {
		case QueueModeWeighted:
			if !s.hasWeight {
				s.weight = 1 // as Sidekiq: once any queue has a weight, the others weigh 1
			}
			if s.weight <= 0 {
				return nil, 0, fmt.Errorf("sidekiq: queue %q has weight %d; weighted mode needs weights > 0 (use QueueModeRanked for TResque-style ranks such as -5000)", s.name, s.weight)
			}
		case QueueModeRanked:
			if !s.hasWeight {
				s.weight = defaultRankedWeight
			}
		}
		if l, ok := limits[s.name]; ok {
			if l <= 0 {
				return nil, 0, fmt.Errorf("sidekiq: QueueLimits[%q] = %d; a limit must be positive", s.name, l)
			}
			s.limit = l
		}
	}
	for name := range limits {
		if _, ok := seen[name]; !ok {
			return nil, 0, fmt.Errorf("sidekiq: QueueLimits names %q, which is not in Queues", name)
		}
	}
	if len(specs) == 0 {
		return nil, 0, errors.New("sidekiq: no queues")
	}
	return specs, mode, nil
}
