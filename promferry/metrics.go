package promferry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryhq/ferry/sidekiq"
)

// Default histogram buckets, in seconds (batch sizes in jobs).
var (
	// DefaultDurationBuckets spans jobs from a millisecond to ten minutes.
	DefaultDurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// DefaultLatencyBuckets spans enqueue-to-start waits from a millisecond to an hour.
	DefaultLatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
	// DefaultBatchBuckets spans fetch batch sizes.
	DefaultBatchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
)

// Config configures Metrics. A nil *Config means every default.
type Config struct {
	// Namespace is the first part of every metric name. Default: "ferry".
	Namespace string
	// ConstLabels are added to every metric (say {"app": "billing"}). Default: none.
	ConstLabels prometheus.Labels
	// Classes, when set, are the only job classes that get a "class" label value of their
	// own; every other class is counted as OtherLabel. Default: every class the server has a
	// handler for, up to MaxClasses (a job with no handler, or whose payload is not a job,
	// is counted as OtherLabel, so a payload cannot make up label values).
	Classes []string
	// MaxClasses bounds the number of class label values when Classes is empty.
	// Default: 200.
	MaxClasses int
	// Queues, when set, are the only queue label values; other queues count as OtherLabel.
	// Attach adds the server's queues. Default: the first MaxQueues queues seen.
	Queues []string
	// MaxQueues bounds the number of queue label values when Queues is empty. Default: 100.
	MaxQueues int
	// DurationBuckets are the buckets of ferry_job_duration_seconds.
	// Default: DefaultDurationBuckets.
	DurationBuckets []float64
	// LatencyBuckets are the buckets of ferry_job_latency_seconds.
	// Default: DefaultLatencyBuckets.
	LatencyBuckets []float64
	// BatchBuckets are the buckets of ferry_fetch_batch_size. Default: DefaultBatchBuckets.
	BatchBuckets []float64
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Namespace == "" {
		out.Namespace = "ferry"
	}
	if out.MaxClasses <= 0 {
		out.MaxClasses = 200
	}
	if out.MaxQueues <= 0 {
		out.MaxQueues = 100
	}
	if len(out.DurationBuckets) == 0 {
		out.DurationBuckets = DefaultDurationBuckets
	}
	if len(out.LatencyBuckets) == 0 {
		out.LatencyBuckets = DefaultLatencyBuckets
	}
	if len(out.BatchBuckets) == 0 {
		out.BatchBuckets = DefaultBatchBuckets
	}
	return out
}

// Metrics counts what Ferry servers in this process do: jobs by queue, class and outcome,
// their run time and enqueue-to-start latency, busy workers, fetch batch sizes and failed
// Redis calls. It is at once a sidekiq.Observer, a run middleware (for busy workers and
// skipped jobs) and a prometheus.Collector: Attach it to a server and register it.
// It is safe for concurrent use.
type Metrics struct {
	sidekiq.ObserverDefaults
	sidekiq.MiddlewareDefaults

	classes, queues, ops *labelSet

	processed, failed, retried, dead, dropped, rescheduled, requeued, skipped *prometheus.CounterVec
	duration, latency                                                         *prometheus.HistogramVec
	busy                                                                      *prometheus.GaugeVec
	batch                                                                     *prometheus.HistogramVec
	redisErrors                                                               *prometheus.CounterVec

	mu       sync.Mutex                              // guards byLabel and cache writes
	byLabel  map[seriesKey]*series                   // folded labels -> series
	cache    atomic.Pointer[map[seriesKey]*series]   // raw names -> series, copy on write
	queueMu  sync.Mutex                              // guards qByLabel and perQ writes
	qByLabel map[string]*queueSeries                 // folded queue label -> series
	perQ     atomic.Pointer[map[string]*queueSeries] // raw queue name -> series, copy on write
}

// seriesKey is a (queue, class) pair, raw or folded.
type seriesKey struct{ queue, class string }

// series holds the metrics of one (queue, class) pair, resolved once so a job costs no
// label lookup.
type series struct {
	processed, failed, retried, dead, dropped, rescheduled, requeued, skipped prometheus.Counter
	duration, latency                                                         prometheus.Observer
}

// queueSeries holds the per-queue metrics.
type queueSeries struct {
	busy  prometheus.Gauge
	batch prometheus.Observer
}

// maxCached bounds the raw-name caches; past it, lookups take the slow path.
const maxCached = 4096

// New returns Metrics configured by cfg (nil: defaults). Register it with a
// prometheus.Registerer and Attach it to a server.
func New(cfg *Config) *Metrics {
	c := cfg.withDefaults()
	m := &Metrics{
		classes:  newLabelSet(c.MaxClasses, c.Classes),
		queues:   newLabelSet(c.MaxQueues, c.Queues),
		ops:      newLabelSet(32, nil),
		byLabel:  map[seriesKey]*series{},
		qByLabel: map[string]*queueSeries{},
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: c.Namespace, Name: name, Help: help, ConstLabels: c.ConstLabels,
		}, []string{"queue", "class"})
	}
	m.processed = counter("jobs_processed_total", "Jobs run to an outcome, failures included (as Sidekiq's processed count).")
	m.failed = counter("jobs_failed_total", "Jobs whose handler failed: retried, dead or dropped (as Sidekiq's failed count).")
	m.retried = counter("jobs_retried_total", "Failed jobs put in the retry set.")
	m.dead = counter("jobs_dead_total", "Jobs put in the dead set: retries exhausted, discarded, or not a runnable job.")
	m.dropped = counter("jobs_dropped_total", `Failed jobs dropped because their payload says "retry": false or "dead": false.`)
	m.rescheduled = counter("jobs_rescheduled_total", "Jobs whose handler asked to run later (sidekiq.RetryIn); not failures.")
	m.requeued = counter("jobs_requeued_total", "Jobs pushed back to their queue unfinished because the server stopped.")
	m.skipped = counter("jobs_skipped_total", "Jobs completed without running because they were no longer needed (middleware.Skip); also counted as processed.")
	hist := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: c.Namespace, Name: name, Help: help, ConstLabels: c.ConstLabels, Buckets: buckets,
		}, []string{"queue", "class"})
	}
	m.duration = hist("job_duration_seconds", "Run time of the middleware chain and handler.", c.DurationBuckets)
	m.latency = hist("job_latency_seconds", "Time from a job's enqueued_at to a worker taking it.", c.LatencyBuckets)
	m.busy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: c.Namespace, Name: "busy_workers", ConstLabels: c.ConstLabels,
		Help: "Jobs this process is running now.",
	}, []string{"queue"})
	m.batch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: c.Namespace, Name: "fetch_batch_size", ConstLabels: c.ConstLabels, Buckets: c.BatchBuckets,
		Help: "Jobs taken by each fetch that returned any.",
	}, []string{"queue"})
	m.redisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: c.Namespace, Name: "redis_errors_total", ConstLabels: c.ConstLabels,
		Help: "Failed Redis calls of the server, by operation.",
	}, []string{"op"})
	empty := map[seriesKey]*series{}
	m.cache.Store(&empty)
	emptyQ := map[string]*queueSeries{}
	m.perQ.Store(&emptyQ)
	return m
}

// Attach makes srv report to m: it registers m as an observer and as run middleware (put
// it first in the chain to count the busy time of the other middleware too), and adds
// srv's queues to the queue label values. Call it before srv.Start.
func (m *Metrics) Attach(srv *sidekiq.Server) {
	m.queues.allow(srv.Queues()...)
	srv.Observe(m)
	srv.Use(m)
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.processed, m.failed, m.retried, m.dead, m.dropped, m.rescheduled, m.requeued, m.skipped,
		m.duration, m.latency, m.busy, m.batch, m.redisErrors,
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// seriesFor returns the series of the raw (queue, class) names, creating it on first use.
func (m *Metrics) seriesFor(queue, class string) *series {
	raw := seriesKey{queue, class}
	if s, ok := (*m.cache.Load())[raw]; ok {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.cache.Load()
	if s, ok := cur[raw]; ok {
		return s
	}
	key := seriesKey{m.queues.value(queue), m.classes.value(class)}
	s, ok := m.byLabel[key]
	if !ok {
		s = &series{
			processed:   m.processed.WithLabelValues(key.queue, key.class),
			failed:      m.failed.WithLabelValues(key.queue, key.class),
			retried:     m.retried.WithLabelValues(key.queue, key.class),
			dead:        m.dead.WithLabelValues(key.queue, key.class),
			dropped:     m.dropped.WithLabelValues(key.queue, key.class),
			rescheduled: m.rescheduled.WithLabelValues(key.queue, key.class),
			requeued:    m.requeued.WithLabelValues(key.queue, key.class),
			skipped:     m.skipped.WithLabelValues(key.queue, key.class),
			duration:    m.duration.WithLabelValues(key.queue, key.class),
			latency:     m.latency.WithLabelValues(key.queue, key.class),
		}
		m.byLabel[key] = s
	}
	if len(cur) < maxCached {
		next := make(map[seriesKey]*series, len(cur)+1)
		for k, v := range cur {
			next[k] = v
		}
		next[raw] = s
		m.cache.Store(&next)
	}
	return s
}

// queueFor returns the per-queue series of the raw queue name.
func (m *Metrics) queueFor(queue string) *queueSeries {
	if s, ok := (*m.perQ.Load())[queue]; ok {
		return s
	}
	m.queueMu.Lock()
	defer m.queueMu.Unlock()
	cur := *m.perQ.Load()
	if s, ok := cur[queue]; ok {
		return s
	}
	label := m.queues.value(queue)
	s, ok := m.qByLabel[label]
	if !ok {
		s = &queueSeries{busy: m.busy.WithLabelValues(label), batch: m.batch.WithLabelValues(label)}
		m.qByLabel[label] = s
	}
	if len(cur) < maxCached {
		next := make(map[string]*queueSeries, len(cur)+1)
		for k, v := range cur {
			next[k] = v
		}
		next[queue] = s
		m.perQ.Store(&next)
	}
	return s
}
