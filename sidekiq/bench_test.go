package sidekiq_test

import (
	"context"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// benchPayload is a job as Sidekiq 6 writes it, with a few keys Ferry keeps in Extra.
const benchPayload = `{"retry":true,"queue":"default","class":"HardWorker","args":["bob",5,{"id":12345678901234567890,"tags":["a","b"]}],` +
	`"jid":"b4a577edbccf1d805744efa9","created_at":1795352598.824373,"enqueued_at":1795352598.8247938,` +
	`"tags":["billing"],"bid":"cA9x2Zp0","backtrace":5}`

// reportJobsPerSec adds a jobs/s figure for jobs handled in the timed part of b.
func reportJobsPerSec(b *testing.B, jobs int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(jobs)/s, "jobs/s")
	}
}

func BenchmarkParseJob(b *testing.B) {
	data := []byte(benchPayload)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := sidekiq.ParseJob(data); err != nil {
			b.Fatal(err)
		}
	}
	reportJobsPerSec(b, b.N)
}

func BenchmarkAppendJSON(b *testing.B) {
	job, err := sidekiq.ParseJobString(benchPayload)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = job.AppendJSON(buf[:0], sidekiq.TimeSeconds)
	}
	b.SetBytes(int64(len(buf)))
	reportJobsPerSec(b, b.N)
}

func BenchmarkEncodeArgs(b *testing.B) {
	args := []any{"bob", 5, 2.5, true, nil, map[string]any{"id": uint64(12345678901234567890), "tags": []string{"a", "b"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sidekiq.EncodeArgs(args); err != nil {
			b.Fatal(err)
		}
	}
	reportJobsPerSec(b, b.N)
}

// BenchmarkPush pushes one job per round trip to the real Redis.
func BenchmarkPush(b *testing.B) {
	rdb := testsuite.RealRedis(b).Client
	client := sidekiq.NewClient(rdb, nil)
	ctx := context.Background()
	args := []any{"bob", 5}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := client.Push(ctx, "HardWorker", args); err != nil {
			b.Fatal(err)
		}
		if i++; i%10_000 == 0 { // keep Redis memory bounded on long runs
			b.StopTimer()
			rdb.Del(ctx, "queue:default")
			b.StartTimer()
		}
	}
	reportJobsPerSec(b, b.N)
}

// BenchmarkPushBulk pushes 1000 jobs per iteration to the real Redis (one MULTI/EXEC with
// the default batch size).
func BenchmarkPushBulk(b *testing.B) {
	const perOp = 1000
	rdb := testsuite.RealRedis(b).Client
	client := sidekiq.NewClient(rdb, nil)
	ctx := context.Background()
	argsList := make([][]any, perOp)
	for i := range argsList {
		argsList[i] = []any{i, "bob"}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.PushBulk(ctx, "IndexWorker", argsList); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rdb.Del(ctx, "queue:default")
		b.StartTimer()
	}
	reportJobsPerSec(b, b.N*perOp)
}
