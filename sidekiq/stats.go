package sidekiq

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// statsTTL is how long daily counters live: 5 years, as Sidekiq.
const statsTTL = 5 * 365 * 24 * time.Hour

// stats counts processed and failed jobs in memory; the heartbeat adds them to Redis's
// stat:processed and stat:failed (and the day's keys) once per beat, as Sidekiq does, so
// counting costs no round trip per job. "processed" counts failures too.
type stats struct {
	nProcessed atomic.Int64
	nFailed    atomic.Int64
}

func (st *stats) processed(n int64) { st.nProcessed.Add(n) }

// failed counts a failure, which is also a processed job.
func (st *stats) failed(n int64) {
	st.nFailed.Add(n)
	st.nProcessed.Add(n)
}

// take returns the counts since the last take and zeroes them.
func (st *stats) take() (processed, failed int64) {
	return st.nProcessed.Swap(0), st.nFailed.Swap(0)
}

// giveBack returns counts whose write failed, to be written with the next beat.
func (st *stats) giveBack(processed, failed int64) {
	st.nProcessed.Add(processed)
	st.nFailed.Add(failed)
}

// queueStats adds the counts to a pipeline.
func queueStats(ctx context.Context, p redis.Pipeliner, k keyspace, now time.Time, processed, failed int64) {
	if processed > 0 {
		p.IncrBy(ctx, k.Stat("processed"), processed)
		p.IncrBy(ctx, k.StatOn("processed", now), processed)
		p.Expire(ctx, k.StatOn("processed", now), statsTTL)
	}
	if failed > 0 {
		p.IncrBy(ctx, k.Stat("failed"), failed)
		p.IncrBy(ctx, k.StatOn("failed", now), failed)
		p.Expire(ctx, k.StatOn("failed", now), statsTTL)
	}
}
