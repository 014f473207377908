package sidekiq

import (
	"context"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Execution metrics are what Sidekiq 7.x and 8.x record per job class and minute for the
// Web UI's Metrics tab and Sidekiq::Metrics::Query (lib/sidekiq/metrics/ in either
// release): jobs processed, jobs failed, total milliseconds of the successful runs, and a
// histogram of those run times. Ruby counts in memory and writes the counts on every
// heartbeat; execMetrics does the same for a Ferry server, in the same keys and encodings,
// so Go classes show beside Ruby ones. METRICS-FORMAT.md (internal/interop) describes the
// layout of both releases.

// metricsFormat chooses the key layouts flush writes; the two never collide, so a fleet in
// the middle of a 7 → 8 upgrade can be served with both.
type metricsFormat uint8

const (
	// metrics7 writes Sidekiq 7.x's layout: "j|%Y%m%d|%-H:%-M" and "<class>-%d-%H:%-M".
	metrics7 metricsFormat = 1 << iota
	// metrics8 writes Sidekiq 8.x's layout: "j|%y%m%d|%-H:%M", its 10-minute rollup and
	// "h|<class>-%-d-%-H:%-M".
	metrics8
)

const (
	// metricsShortTTL is how long minute buckets and histograms live (8 hours, both releases).
	metricsShortTTL = 8 * time.Hour
	// metricsMidTTL is how long 8.x's 10-minute buckets live (3 days).
	metricsMidTTL = 72 * time.Hour
	// defaultMetricsClasses is how many distinct classes one flush period records by
	// name; further classes are counted under metricsOtherClass.
	defaultMetricsClasses = 1000
	// maxMetricsClassLen bounds a recorded class name in bytes.
	maxMetricsClassLen = 256
)

// metricsOtherClass is the class name under which execution metrics count jobs whose class
// cannot be recorded by name: more distinct classes in one heartbeat period than the
// recorder keeps, or a name that is empty, longer than 256 bytes, not UTF-8, or holds
// "|" (which separates class and metric in Sidekiq's hash fields) or a control character.
// Totals on the Metrics page stay right; only the breakdown is lost.
const metricsOtherClass = "Ferry::OtherClasses"

// metricsBuckets are the upper bounds, in milliseconds, of Sidekiq's run-time histogram
// (Sidekiq::Metrics::Histogram::BUCKET_INTERVALS, the same in 7.3 and 8.1): a run of ms
// milliseconds counts in the first bucket whose bound is greater than ms; the last bucket
// takes everything from 335 s.
var metricsBuckets = [...]int64{
	20, 30, 45, 65, 100,
	150, 225, 335, 500, 750,
	1100, 1700, 2500, 3800, 5750,
	8500, 13000, 20000, 30000, 45000,
	65000, 100000, 150000, 225000, 335000,
}

// metricsHistogramSize is the number of histogram buckets: the bounded ones and "Slow".
const metricsHistogramSize = len(metricsBuckets) + 1

// histogramBucket is the histogram index of a run of ms milliseconds.
func histogramBucket(ms int64) int {
	for i, bound := range metricsBuckets {
		if ms < bound {
			return i
		}
	}
	return len(metricsBuckets)
}

// classMetrics is what one class did in one flush period.
type classMetrics struct {
	processed int64 // runs, failed ones included ("p")
	failed    int64 // failed runs ("f")
	succeeded int64 // runs with a time recorded; "ms" is written when > 0
	ms        int64 // total milliseconds of the successful runs ("ms")
	hist      [metricsHistogramSize]int64
}

// execMetrics records execution metrics per class between flushes. It is safe for
// concurrent use; record is meant for the job path (one mutex, one map lookup).
type execMetrics struct {
	format     metricsFormat
	maxClasses int

	mu      sync.Mutex
	classes map[string]*classMetrics
}

// newExecMetrics returns a recorder writing format that keeps up to maxClasses distinct
// class names per flush period (defaultMetricsClasses when maxClasses <= 0).
func newExecMetrics(format metricsFormat, maxClasses int) *execMetrics {
	if maxClasses <= 0 {
		maxClasses = defaultMetricsClasses
	}
	return &execMetrics{format: format, maxClasses: maxClasses, classes: map[string]*classMetrics{}}
}

// newServerMetrics is the recorder a server of a fleet of version v feeds: both layouts
// when the version is not known, none for Sidekiq 6 (which has no Metrics tab).
func newServerMetrics(v SidekiqVersion) *execMetrics {
	switch v {
	case Sidekiq6:
		return nil
	case Sidekiq7:
		return newExecMetrics(metrics7, 0)
	case Sidekiq8:
		return newExecMetrics(metrics8, 0)
	}
	return newExecMetrics(metrics7|metrics8, 0)
}

// metricsClass is the class Sidekiq records a job under: "wrapped" (the ActiveJob class)
// when present, else "class" (Sidekiq::Metrics::Middleware: hash["wrapped"] || hash["class"]).
func metricsClass(j *Job) string {
	if j.Wrapped != "" {
		return j.Wrapped
	}
	return j.Class
}

// record counts one run of class that took elapsed. A failed run counts as processed and
// failed and adds no time (Sidekiq keeps failures out of the times, which are meant to show
// how long the job takes when it works); a successful one adds its whole milliseconds to
// the total and to the histogram.
func (r *execMetrics) record(class string, elapsed time.Duration, failed bool) {
	if !recordableClass(class) {
		class = metricsOtherClass
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.classes[class]
	if c == nil {
		if len(r.classes) >= r.maxClasses {
			class = metricsOtherClass
			c = r.classes[class]
		}
		if c == nil {
			c = &classMetrics{}
			r.classes[class] = c
		}
	}
	c.processed++
	if failed {
		c.failed++
		return
	}
	ms := max(elapsed.Milliseconds(), 0)
	c.succeeded++
	c.ms += ms
	c.hist[histogramBucket(ms)]++
}

// recordableClass reports whether class can name a metric: 1 to 256 bytes of UTF-8 without
// "|" or control characters.
func recordableClass(class string) bool {
	if class == "" || len(class) > maxMetricsClassLen || !utf8.ValidString(class) {
		return false
	}
	for _, c := range class {
		if c == '|' || c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return false
		}
	}
	return true
}

// take returns what was recorded since the last take and starts a new period.
func (r *execMetrics) take() map[string]*classMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.classes) == 0 {
		return nil
	}
	out := r.classes
	r.classes = make(map[string]*classMetrics, len(out))
	return out
}

// flush appends to p the commands that add everything recorded since the last flush to
// the metrics of the minute now falls in (UTC), in each layout of r.format, and starts a
// new period. It appends nothing when nothing was recorded. As in Sidekiq, what a failed
// pipeline did not write is not retried: metrics are a view, not a ledger. Run p outside
// the heartbeat's MULTI, so that an error here (a key of the wrong type) cannot fail the
// beat.
func (r *execMetrics) flush(ctx context.Context, p redis.Pipeliner, keys keyspace, now time.Time) {
	classes := r.take()
	if len(classes) == 0 {
		return
	}
	now = now.UTC()
	if r.format&metrics7 != 0 {
		appendMetrics(ctx, p, keys, classes, now, metrics7)
	}
	if r.format&metrics8 != 0 {
		appendMetrics(ctx, p, keys, classes, now, metrics8)
	}
}

// appendMetrics appends one layout's commands: per class a BITFIELD of its histogram (when
// it has successful runs), then HINCRBYs of its counters into each time bucket, each key
// followed by its EXPIRE, in the order Sidekiq's ExecutionTracker#flush sends them.
func appendMetrics(ctx context.Context, p redis.Pipeliner, keys keyspace, classes map[string]*classMetrics, now time.Time, f metricsFormat) {
	for class, c := range classes {
		if c.succeeded == 0 {
			continue
		}
		key := keys.Key(histogramKey(class, now, f))
		args := make([]any, 0, 2+4*metricsHistogramSize)
		args = append(args, "OVERFLOW", "SAT")
		for i, n := range c.hist {
			if n > 0 {
				args = append(args, "INCRBY", "u16", "#"+strconv.Itoa(i), n)
			}
		}
		p.BitField(ctx, key, args...)
		p.Expire(ctx, key, metricsShortTTL)
	}
	type bucket struct {
		key string
		ttl time.Duration
	}
	buckets := []bucket{{minuteBucketKey(now, f), metricsShortTTL}}
	if f == metrics8 {
		buckets = []bucket{{tenMinuteBucketKey(now), metricsMidTTL}, buckets[0]}
	}
	for _, b := range buckets {
		key := keys.Key(b.key)
		for class, c := range classes {
			if c.succeeded > 0 {
				p.HIncrBy(ctx, key, class+"|ms", c.ms)
			}
			p.HIncrBy(ctx, key, class+"|p", c.processed)
			if c.failed > 0 {
				p.HIncrBy(ctx, key, class+"|f", c.failed)
			}
		}
		p.Expire(ctx, key, b.ttl)
	}
}

// minuteBucketKey is the hash of one minute's counters: "j|20261201|9:5" (7.x,
// %Y%m%d|%-H:%-M) or "j|261201|9:05" (8.x, %y%m%d|%-H:%M).
func minuteBucketKey(t time.Time, f metricsFormat) string {
	b := make([]byte, 0, 20)
	b = append(b, "j|"...)
	if f == metrics7 {
		b = appendPadded(b, t.Year(), 4)
	} else {
		b = appendPadded(b, t.Year()%100, 2)
	}
	b = appendPadded(b, int(t.Month()), 2)
	b = appendPadded(b, t.Day(), 2)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(t.Hour()), 10)
	b = append(b, ':')
	if f == metrics7 {
		b = strconv.AppendInt(b, int64(t.Minute()), 10)
	} else {
		b = appendPadded(b, t.Minute(), 2)
	}
	return string(b)
}

// tenMinuteBucketKey is 8.x's 10-minute rollup of the minute buckets: the 8.x minute key
// without its last digit, "j|261201|9:0" for 9:00 to 9:09.
func tenMinuteBucketKey(t time.Time) string {
	k := minuteBucketKey(t, metrics8)
	return k[:len(k)-1]
}

// histogramKey is the BITFIELD of one class's histogram for one minute:
// "<class>-01-09:5" (7.x, %d-%H:%-M) or "h|<class>-1-9:5" (8.x, %-d-%-H:%-M).
func histogramKey(class string, t time.Time, f metricsFormat) string {
	b := make([]byte, 0, len(class)+12)
	if f == metrics8 {
		b = append(b, "h|"...)
	}
	b = append(b, class...)
	b = append(b, '-')
	if f == metrics7 {
		b = appendPadded(b, t.Day(), 2)
		b = append(b, '-')
		b = appendPadded(b, t.Hour(), 2)
	} else {
		b = strconv.AppendInt(b, int64(t.Day()), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(t.Hour()), 10)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(t.Minute()), 10)
	return string(b)
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
