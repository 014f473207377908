package promferry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/sidekiq"
)

// StatsConfig configures a StatsCollector. A nil *StatsConfig means every default.
type StatsConfig struct {
	// Namespace is the Sidekiq key namespace (redis-namespace, Sidekiq 6), as in
	// sidekiq.Config.Namespace. Default: none.
	Namespace string
	// MetricNamespace is the first part of every metric name. Default: "ferry".
	MetricNamespace string
	// ConstLabels are added to every metric. Default: none.
	ConstLabels prometheus.Labels
	// Queues are read on every refresh, before any other. Default: none (only the queues
	// found in Redis's "queues" set).
	Queues []string
	// NoDiscovery, when true, reads only Queues. Default: false, so the queues in the
	// "queues" set (every queue Ruby or Go pushed to) are read too, up to MaxQueues.
	NoDiscovery bool
	// MaxQueues bounds how many queues a refresh reads (Queues included); the rest are
	// counted in ferry_sidekiq_queues only. Default: 100.
	MaxQueues int
	// MaxProcesses bounds how many processes' busy counts a refresh reads. Default: 200.
	MaxProcesses int
	// Interval is how long a refresh's figures are served before Redis is read again, so
	// scrapes as frequent as you like cost at most one refresh per Interval. Default: 5s.
	Interval time.Duration
	// Timeout bounds one refresh. Default: 2s.
	Timeout time.Duration
	// Logger hears failed refreshes. Default: zap.NewNop().
	Logger *zap.Logger
	// Clock tells the time (queue latency, Interval). Default: the wall clock.
	Clock sidekiq.Clock
}

func (c *StatsConfig) withDefaults() StatsConfig {
	var out StatsConfig
	if c != nil {
		out = *c
	}
	if out.MetricNamespace == "" {
		out.MetricNamespace = "ferry"
	}
	if out.MaxQueues <= 0 {
		out.MaxQueues = 100
	}
	if out.MaxProcesses <= 0 {
		out.MaxProcesses = 200
	}
	if out.Interval <= 0 {
		out.Interval = 5 * time.Second
	}
	if out.Timeout <= 0 {
		out.Timeout = 2 * time.Second
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	if out.Clock == nil {
		out.Clock = clock.Real{}
	}
	return out
}

// StatsCollector is a prometheus.Collector of the Sidekiq state every process shares, as
// the Web UI's dashboard shows it: queue sizes and latencies, the retry, scheduled and
// dead set sizes, live processes and busy workers, and the processed and failed totals.
// Ruby's jobs and processes are counted as well as Go's.
//
// A scrape serves the figures of the last refresh while they are younger than
// StatsConfig.Interval; an older one triggers a refresh (concurrent scrapes wait for the
// same one). A refresh is one pipelined round trip, whose size is bounded by MaxQueues and
// MaxProcesses; the list of queues and processes it reads is the one the previous refresh
// found (the first refresh takes one more round trip to find them).
//
// Every process that runs a StatsCollector on the same Redis reports the same figures: in
// queries, take max (not sum) across instances, or run it in one place only.
type StatsCollector struct {
	rdb  redis.UniversalClient
	cfg  StatsConfig
	keys keys

	descs statsDescs

	mu        sync.Mutex // serialises refreshes and guards the fields below
	snap      *statsSnapshot
	tried     time.Time // last refresh attempt
	ok        bool      // last refresh succeeded
	errors    float64
	found     bool     // discovery ran at least once
	queues    []string // discovered queue names (beyond cfg.Queues), sorted
	processes []string // discovered process identities
}

// NewStatsCollector returns a collector reading rdb, configured by cfg (nil: defaults).
// Register it with a prometheus.Registerer.
func NewStatsCollector(rdb redis.UniversalClient, cfg *StatsConfig) *StatsCollector {
	c := cfg.withDefaults()
	return &StatsCollector{rdb: rdb, cfg: c, keys: keys{prefix: nsPrefix(c.Namespace)}, descs: newStatsDescs(c)}
}

func nsPrefix(ns string) string {
	if ns == "" {
		return ""
	}
	return ns + ":"
}

// keys builds the Sidekiq keys the collector reads.
type keys struct{ prefix string }

func (k keys) key(s string) string { return k.prefix + s }

// statsDescs are the collector's metric descriptions.
type statsDescs struct {
	queueSize, queueLatency, queues                   *prometheus.Desc
	retry, scheduled, dead, processes, busy           *prometheus.Desc
	processed, failed, up, refreshErrors, statsAgeSec *prometheus.Desc
}

func newStatsDescs(c StatsConfig) statsDescs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(c.MetricNamespace, "sidekiq", name), help, labels, c.ConstLabels)
	}
	return statsDescs{
		queueSize:     d("queue_size", "Jobs waiting in the queue (LLEN queue:<name>).", "queue"),
		queueLatency:  d("queue_latency_seconds", "Age of the oldest job in the queue, from its enqueued_at (0 when empty).", "queue"),
		queues:        d("queues", "Queues in the queues set (all of them, also those past MaxQueues)."),
		retry:         d("retry_size", "Jobs in the retry set."),
		scheduled:     d("scheduled_size", "Jobs in the schedule set."),
		dead:          d("dead_size", "Jobs in the dead set."),
		processes:     d("processes", "Live Sidekiq and Ferry processes (heartbeat present)."),
		busy:          d("busy", "Jobs running now in all live processes, Ruby's and Go's."),
		processed:     d("processed_total", "Sidekiq's stat:processed: jobs processed by every process, failures included."),
		failed:        d("failed_total", "Sidekiq's stat:failed: jobs failed in every process."),
		up:            d("up", "1 when the last refresh from Redis succeeded, else 0 (the other figures are then those of the last success)."),
		refreshErrors: d("refresh_errors_total", "Refreshes from Redis that failed."),
		statsAgeSec:   d("stats_age_seconds", "Age of the figures served, since the refresh that read them."),
	}
}

// Describe implements prometheus.Collector.
func (c *StatsCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs
	for _, x := range []*prometheus.Desc{d.queueSize, d.queueLatency, d.queues, d.retry, d.scheduled, d.dead,
		d.processes, d.busy, d.processed, d.failed, d.up, d.refreshErrors, d.statsAgeSec} {
		ch <- x
	}
}

// Collect implements prometheus.Collector: it refreshes the figures when they are older
// than Interval, then sends them.
func (c *StatsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	now := c.cfg.Clock.Now()
	if c.tried.IsZero() || now.Sub(c.tried) >= c.cfg.Interval {
		c.tried = now
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		snap, err := c.refresh(ctx, now)
		cancel()
		if err != nil {
			if c.ok {
				c.cfg.Logger.Warn("reading Sidekiq stats from Redis failed; serving the last figures", zap.Error(err))
			}
			c.ok = false
			c.errors++
		} else {
			c.ok, c.snap = true, snap
		}
	}
	snap, ok, errs := c.snap, c.ok, c.errors
	c.mu.Unlock()

	d := c.descs
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	gauge(d.up, map[bool]float64{true: 1, false: 0}[ok])
	ch <- prometheus.MustNewConstMetric(d.refreshErrors, prometheus.CounterValue, errs)
	if snap == nil {
		return
	}
	gauge(d.statsAgeSec, max(now.Sub(snap.at), 0).Seconds())
	for _, q := range snap.queues {
		gauge(d.queueSize, float64(q.size), q.label)
		gauge(d.queueLatency, q.latency.Seconds(), q.label)
	}
	gauge(d.queues, float64(snap.queueCount))
	gauge(d.retry, float64(snap.retry))
	gauge(d.scheduled, float64(snap.scheduled))
	gauge(d.dead, float64(snap.dead))
	gauge(d.processes, float64(snap.processes))
	gauge(d.busy, float64(snap.busy))
	ch <- prometheus.MustNewConstMetric(d.processed, prometheus.CounterValue, float64(snap.processed))
	ch <- prometheus.MustNewConstMetric(d.failed, prometheus.CounterValue, float64(snap.failed))
}
