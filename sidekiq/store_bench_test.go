package sidekiq_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/sidekiq"
)

// redisCPU is the CPU time (user + sys, seconds) Redis has used.
func redisCPU(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
	}
	return total
}

// BenchmarkFetchAckRedisCPU measures what the fetch-and-ack cycle costs Redis per job:
// batches of 100 fetched into the in-flight hash and acknowledged, on a redis-server of
// its own (no other client). It reports redis-µs/job (Redis CPU, user + sys) beside the
// time per job. Run: go test ./sidekiq -run '^$' -bench FetchAckRedisCPU -benchtime 200000x
func BenchmarkFetchAckRedisCPU(b *testing.B) {
	rs := redisproc.Start(b, "--appendonly", "no")
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	b.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	st := sidekiq.NewStoreForBench(rdb, "bench:1:abc", "default")
	payload := `{"retry":true,"queue":"default","class":"NoopJob","args":[1,"payload"],"jid":"0123456789abcdef01234567","created_at":1795352598.824373,"enqueued_at":1795352598.824373}`
	const batch = 1000
	for left := b.N; left > 0; left -= batch {
		n := min(left, batch)
		vals := make([]any, n)
		for i := range vals {
			vals[i] = payload
		}
		if err := rdb.LPush(ctx, "queue:default", vals...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	var seq uint64
	before := redisCPU(b, rdb)
	b.ResetTimer()
	done := 0
	for done < b.N {
		fields, err := st.Fetch(ctx, 100, seq)
		if err != nil {
			b.Fatal(err)
		}
		seq += 100
		if len(fields) == 0 {
			b.Fatalf("queue empty after %d of %d jobs", done, b.N)
		}
		if err := st.Ack(ctx, fields); err != nil {
			b.Fatal(err)
		}
		done += len(fields)
	}
	b.StopTimer()
	after := redisCPU(b, rdb)
	b.ReportMetric((after-before)*1e6/float64(b.N), "redis-µs/job")
}
