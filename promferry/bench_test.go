package promferry_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferryhq/ferry/promferry"
	"github.com/ferryhq/ferry/sidekiq"
)

// BenchmarkPerJob is what Metrics adds to one successful job: the run middleware (busy
// gauge, skip tracking) and the observer (counters and both histograms).
func BenchmarkPerJob(b *testing.B) {
	m := promferry.New(&promferry.Config{Queues: []string{"default"}})
	job := &sidekiq.Job{Class: "HardWorker", Queue: "default", Args: []byte("[]"), EnqueuedAt: time.Now()}
	ev := &sidekiq.JobEvent{Job: job, Class: "HardWorker", Queue: "default", Outcome: sidekiq.OutcomeSucceeded,
		Duration: time.Millisecond, Latency: 2 * time.Millisecond}
	next := func(context.Context) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = m.InterceptRun(ctx, job, next)
			m.JobFinished(ev)
		}
	})
}
