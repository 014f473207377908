package periodic

import (
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/sidekiq"
)

// Config configures a Scheduler. The zero value (or nil) means every default.
type Config struct {
	// Namespace prefixes every key with "<Namespace>:", as redis-namespace does for
	// Sidekiq 6. It must be the namespace of the Client given to New and of the Ruby
	// processes sharing the schedules. Default: none.
	Namespace string
	// Location is the time zone of specs that name none (no CRON_TZ= prefix, no trailing
	// zone, no Job.Location). Default: time.Local, as sidekiq-cron reads such specs in
	// each Ruby process's local zone. In a fleet whose hosts do not share one zone, name
	// the zone in every spec instead.
	Location *time.Location
	// Grace is how late a tick may still be enqueued. A tick older than Grace when a
	// scheduler first gets to it (every scheduler was down, Redis was unreachable) is
	// skipped, unless its job has CatchUp. Default: 60 seconds, sidekiq-cron's window.
	Grace time.Duration
	// RefreshInterval is how often the scheduler re-reads the schedules in Redis (jobs
	// added, changed or removed by Ruby or by other Ferry processes), rewrites its own
	// jobs' definitions there (so a Redis that lost its data, or a job deleted from the
	// Web tab, gets them back), and looks for claimed ticks whose push was interrupted.
	// Enabling and disabling a job takes effect at once, not at the next refresh.
	// Default: 5 seconds.
	RefreshInterval time.Duration
	// RecoverAfter is how long a claimed tick may wait for its push (the claiming
	// process died, or Redis failed between the claim and the push) before any
	// scheduler pushes it. A push guard makes that push happen once even if the first
	// one was only slow. Default: 15 seconds.
	RecoverAfter time.Duration
	// HistorySize is how many enqueues are kept in each job's jid history (the Web
	// tab's detail page). Default: 10, sidekiq-cron's cron_history_size.
	HistorySize int
	// OwnJobsOnly leaves the jobs this scheduler did not Add (defined in Ruby or by
	// other Ferry services) to their own pollers. Default: false, every job in
	// sidekiq-cron's set is enqueued, so a Go-only fleet keeps Rails schedules running.
	OwnJobsOnly bool
	// MaxJobs bounds how many jobs are read from Redis. Default: 10,000.
	MaxJobs int
	// Logger receives warnings: bad job definitions in Redis (once per definition),
	// Redis errors, interrupted pushes. Default: no logging.
	Logger *zap.Logger
	// Clock tells the time. Default: the wall clock. Tests may pass a fake.
	Clock sidekiq.Clock
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Location == nil {
		out.Location = time.Local
	}
	if out.Grace <= 0 {
		out.Grace = 60 * time.Second
	}
	if out.RefreshInterval <= 0 {
		out.RefreshInterval = 5 * time.Second
	}
	if out.RecoverAfter <= 0 {
		out.RecoverAfter = 15 * time.Second
	}
	if out.HistorySize <= 0 {
		out.HistorySize = 10
	}
	if out.MaxJobs <= 0 {
		out.MaxJobs = 10_000
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	if out.Clock == nil {
		out.Clock = clock.Real{}
	}
	return out
}
