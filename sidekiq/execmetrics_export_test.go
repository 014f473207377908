package sidekiq

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// ExecMetricsForTest gives the external tests (execmetrics_ruby_test.go, which need
// testutil and so cannot live in this package) the execution-metrics recorder.
type ExecMetricsForTest struct{ r *execMetrics }

// NewExecMetricsForTest returns a recorder writing Sidekiq major's layout (7 or 8; any other
// value writes both).
func NewExecMetricsForTest(major, maxClasses int) *ExecMetricsForTest {
	f := metrics7 | metrics8
	switch major {
	case 7:
		f = metrics7
	case 8:
		f = metrics8
	}
	return &ExecMetricsForTest{r: newExecMetrics(f, maxClasses)}
}

// Record is execMetrics.record.
func (m *ExecMetricsForTest) Record(class string, elapsed time.Duration, failed bool) {
	m.r.record(class, elapsed, failed)
}

// Flush runs execMetrics.flush in a pipeline of its own on rdb.
func (m *ExecMetricsForTest) Flush(ctx context.Context, rdb redis.UniversalClient, namespace string, now time.Time) error {
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		m.r.flush(ctx, p, newKeyspace(namespace), now)
		return nil
	})
	return err
}

// MetricsOtherClassForTest is metricsOtherClass.
const MetricsOtherClassForTest = metricsOtherClass
