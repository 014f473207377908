package api

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/sidekiq"
)

// Config configures an API. The zero value (or nil) means every default.
type Config struct {
	// Namespace prefixes every key with "<Namespace>:", as redis-namespace did for
	// Sidekiq 6 (values such as queue names and process identities are not prefixed).
	// Default: none.
	Namespace string
	// TimeFormat is how enqueued_at (and created_at, when a payload lacks one) is written
	// into a job that Retry puts back on its queue. Default: sidekiq.TimeSeconds (float
	// seconds, which Sidekiq 6, 7 and 8 all read).
	TimeFormat sidekiq.TimeFormat
	// DeadMaxJobs is Sidekiq's dead_max_jobs: Kill trims the dead set as Sidekiq does,
	// with ZREMRANGEBYRANK 0 -DeadMaxJobs (which keeps DeadMaxJobs-1 entries). Default:
	// 10,000, Sidekiq's default.
	DeadMaxJobs int
	// DeadTimeout is Sidekiq's dead_timeout_in_seconds: Kill drops dead entries older than
	// this. Default: 180 days, Sidekiq's default.
	DeadTimeout time.Duration
	// PageSize is how many entries one read of a sorted set or a queue returns while
	// Each and the bulk actions page through it; at most this many payloads are held in
	// memory at once. Default: 500.
	PageSize int
	// Clock tells the time for latencies, ages and the timestamps Retry and Kill write.
	// Default: the wall clock. Tests may pass a fake (see testutil.NewFakeClock).
	Clock sidekiq.Clock
}

// DefaultDeadMaxJobs and DefaultDeadTimeout are Sidekiq's defaults for trimming the dead
// set.
const (
	DefaultDeadMaxJobs = 10000
	DefaultDeadTimeout = 180 * 24 * time.Hour
)

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.DeadMaxJobs <= 0 {
		out.DeadMaxJobs = DefaultDeadMaxJobs
	}
	if out.DeadTimeout <= 0 {
		out.DeadTimeout = DefaultDeadTimeout
	}
	if out.PageSize <= 0 {
		out.PageSize = 500
	}
	if out.Clock == nil {
		out.Clock = clock.Real{}
	}
	return out
}

// API reads and changes Sidekiq's state in Redis, as Ruby's Sidekiq::API does. It is safe
// for concurrent use and never closes the Redis client it was given.
type API struct {
	rdb  redis.UniversalClient
	cfg  Config
	keys keyspace
}

// New returns an API over rdb. A nil cfg means every default.
func New(rdb redis.UniversalClient, cfg *Config) *API {
	c := cfg.withDefaults()
	return &API{rdb: rdb, cfg: c, keys: newKeyspace(c.Namespace)}
}

func (a *API) now() time.Time { return a.cfg.Clock.Now() }
