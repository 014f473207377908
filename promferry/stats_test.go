package promferry_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/promferry"
	"github.com/ferryhq/ferry/testutil"
)

// slowRedis is the refresh timeout of tests on the shared real Redis, which a loaded
// machine can slow far beyond the 2 s default.
const slowRedis = time.Minute

// seedSidekiq writes the state a mixed Ruby and Go fleet leaves in Redis, under prefix.
func seedSidekiq(t *testing.T, rdb redis.UniversalClient, prefix string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	job := func(class string, enqueued time.Time) string {
		return fmt.Sprintf(`{"class":%q,"args":[1],"jid":"0123456789abcdef01234567","queue":"q","created_at":%.3f,"enqueued_at":%.3f}`,
			class, float64(enqueued.UnixMilli())/1000, float64(enqueued.UnixMilli())/1000)
	}
	p := rdb.Pipeline()
	p.SAdd(ctx, prefix+"queues", "critical", "default", "empty")
	// LPUSH puts the newest at the head; the oldest (next to run) is the tail.
	p.LPush(ctx, prefix+"queue:critical", job("A", now.Add(-90*time.Second)), job("A", now.Add(-10*time.Second)), job("A", now))
	// Sidekiq 8 writes integer milliseconds.
	p.LPush(ctx, prefix+"queue:default", fmt.Sprintf(`{"class":"B","args":[],"jid":"x","enqueued_at":%d}`, now.Add(-2*time.Second).UnixMilli()))
	for i := range 2 {
		p.ZAdd(ctx, prefix+"retry", redis.Z{Score: float64(i), Member: fmt.Sprintf(`{"class":"R","args":[%d]}`, i)})
	}
	p.ZAdd(ctx, prefix+"schedule", redis.Z{Score: 1, Member: `{"class":"S","args":[]}`})
	for i := range 4 {
		p.ZAdd(ctx, prefix+"dead", redis.Z{Score: float64(i), Member: fmt.Sprintf(`{"class":"D","args":[%d]}`, i)})
	}
	p.Set(ctx, prefix+"stat:processed", 1234, 0)
	p.Set(ctx, prefix+"stat:failed", 56, 0)
	p.SAdd(ctx, prefix+"processes", "ruby-host:1:abc", "go-host:2:def", "gone-host:3:fff")
	p.HSet(ctx, prefix+"ruby-host:1:abc", "busy", "3", "beat", "1")
	p.HSet(ctx, prefix+"go-host:2:def", "busy", "4", "beat", "1")
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStatsCollector reads what the Web UI's dashboard shows, on both backends, with and
// without a namespace.
func TestStatsCollector(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, ns := range []string{"", "myapp"} {
			prefix := ""
			if ns != "" {
				prefix = ns + ":"
			}
			now := time.Now()
			seedSidekiq(t, rdb, prefix, now)
			clk := testutil.NewFakeClock(now)
			c := promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Namespace: ns, Clock: clk, Queues: []string{"default"}, Timeout: slowRedis})
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(c)
			s := samples(t, reg)
			want := map[string]float64{
				`ferry_sidekiq_queue_size{queue="critical"}`:            3,
				`ferry_sidekiq_queue_size{queue="default"}`:             1,
				`ferry_sidekiq_queue_size{queue="empty"}`:               0,
				`ferry_sidekiq_queue_latency_seconds{queue="critical"}`: 90,
				`ferry_sidekiq_queue_latency_seconds{queue="default"}`:  2,
				`ferry_sidekiq_queue_latency_seconds{queue="empty"}`:    0,
				`ferry_sidekiq_queues{}`:                                3,
				`ferry_sidekiq_retry_size{}`:                            2,
				`ferry_sidekiq_scheduled_size{}`:                        1,
				`ferry_sidekiq_dead_size{}`:                             4,
				`ferry_sidekiq_processes{}`:                             2,
				`ferry_sidekiq_busy{}`:                                  7,
				`ferry_sidekiq_processed_total{}`:                       1234,
				`ferry_sidekiq_failed_total{}`:                          56,
				`ferry_sidekiq_up{}`:                                    1,
				`ferry_sidekiq_refresh_errors_total{}`:                  0,
			}
			for k, v := range want {
				got, ok := s[k]
				if strings.Contains(k, "latency") {
					if !ok || got < v-0.01 || got > v+0.01 {
						t.Errorf("ns %q: %s = %v, want %v (±10 ms)", ns, k, got, v)
					}
					continue
				}
				if !ok || got != v {
					t.Errorf("ns %q: %s = %v (present %v), want %v", ns, k, got, ok, v)
				}
			}
			if problems, err := promtest.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %v", problems, err)
			}
		}
	})
}

// TestStatsCollectorIsCheap: scrapes within Interval read nothing; a refresh is one
// pipelined round trip (two the very first time, to find the queues and processes).
func TestStatsCollectorIsCheap(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	now := time.Now()
	seedSidekiq(t, rdb, "", now)
	rt := &testsuite.RoundTrips{}
	rdb.AddHook(rt)
	clk := testutil.NewFakeClock(now)
	c := promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Clock: clk, Interval: 10 * time.Second, Timeout: slowRedis})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	samples(t, reg)
	if rt.N() != 2 {
		t.Fatalf("first scrape: %d round trips, want 2", rt.N())
	}
	rt.Reset()
	for range 50 {
		samples(t, reg)
	}
	if rt.N() != 0 {
		t.Fatalf("50 scrapes within the interval: %d round trips, want 0", rt.N())
	}
	clk.Set(now.Add(10 * time.Second))
	// A queue created since is found by this refresh and read by the next.
	if err := rdb.SAdd(context.Background(), "queues", "new").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.LPush(context.Background(), "queue:new", `{"class":"N","args":[]}`)
	rt.Reset()
	s := samples(t, reg)
	if rt.N() != 1 {
		t.Fatalf("refresh: %d round trips, want 1", rt.N())
	}
	if _, ok := s[`ferry_sidekiq_queue_size{queue="new"}`]; ok {
		t.Error("a queue found by this refresh was already read")
	}
	clk.Set(now.Add(20 * time.Second))
	s = samples(t, reg)
	if s[`ferry_sidekiq_queue_size{queue="new"}`] != 1 || rt.N() != 2 {
		t.Errorf("next refresh: new queue size %v, round trips %d; want 1 and 2", s[`ferry_sidekiq_queue_size{queue="new"}`], rt.N())
	}
	if age := s[`ferry_sidekiq_stats_age_seconds{}`]; age != 0 {
		t.Errorf("stats age right after a refresh = %v", age)
	}
}

// TestStatsCollectorBounds: a queues set of 500 names (and a processes set of 500) makes a
// refresh read at most MaxQueues queues and MaxProcesses processes; a configured queue is
// always among them; ferry_sidekiq_queues still counts them all.
func TestStatsCollectorBounds(t *testing.T) {
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		p := rdb.Pipeline()
		for i := range 500 {
			p.SAdd(ctx, "queues", fmt.Sprintf("q%03d", i))
			p.SAdd(ctx, "processes", fmt.Sprintf("host:%d:x", i))
			p.HSet(ctx, fmt.Sprintf("host:%d:x", i), "busy", 1)
		}
		p.LPush(ctx, "queue:mine", `{"class":"M","args":[]}`)
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		c := promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Queues: []string{"mine"}, MaxQueues: 10, MaxProcesses: 20, Timeout: slowRedis})
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		s := samples(t, reg)
		if s[`ferry_sidekiq_up{}`] != 1 {
			t.Fatal("the refresh failed")
		}
		if n := len(series(s, "ferry_sidekiq_queue_size")); n != 10 {
			t.Errorf("%d queues read, want MaxQueues = 10", n)
		}
		if s[`ferry_sidekiq_queue_size{queue="mine"}`] != 1 {
			t.Error("the configured queue was not read")
		}
		if s[`ferry_sidekiq_queues{}`] != 500 {
			t.Errorf("ferry_sidekiq_queues = %v, want 500", s[`ferry_sidekiq_queues{}`])
		}
		if got := s[`ferry_sidekiq_processes{}`]; got < 1 || got > 20 {
			t.Errorf("processes read = %v, want 1..20", got)
		}
	})
}

// TestStatsCollectorHostileData: names and values other programs wrote are untrusted: an
// invalid-UTF-8 or huge queue name, a queue key of the wrong type, an oldest job that is
// not JSON, busy counts that are garbage, negative or huge. None breaks the scrape.
func TestStatsCollectorHostileData(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	long := strings.Repeat("L", 10000)
	p := rdb.Pipeline()
	p.SAdd(ctx, "queues", "\xff\xfebad", long, long+"2", "wrongtype", "garbage", "ok")
	p.LPush(ctx, "queue:\xff\xfebad", `{"class":"A","args":[]}`)
	p.LPush(ctx, "queue:"+long, `{"class":"A","args":[]}`)
	p.LPush(ctx, "queue:"+long+"2", `{"class":"A","args":[]}`, `{"class":"A","args":[]}`)
	p.Set(ctx, "queue:wrongtype", "a string", 0)
	p.LPush(ctx, "queue:garbage", `{not json`)
	p.LPush(ctx, "queue:ok", `{"class":"A","args":[]}`)
	p.Set(ctx, "stat:processed", "lots", 0)
	p.SAdd(ctx, "processes", "a", "b", "c")
	p.HSet(ctx, "a", "busy", "garbage")
	p.HSet(ctx, "b", "busy", "-5")
	p.HSet(ctx, "c", "busy", "99999999999999")
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	c := promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Timeout: slowRedis})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	s := samples(t, reg)
	if s[`ferry_sidekiq_up{}`] != 1 {
		t.Fatalf("up = %v: a bad key failed the whole refresh", s[`ferry_sidekiq_up{}`])
	}
	if s[`ferry_sidekiq_queue_size{queue="ok"}`] != 1 || s[`ferry_sidekiq_queue_latency_seconds{queue="garbage"}`] != 0 {
		t.Errorf("ok/garbage queues: %v", series(s, "ferry_sidekiq_queue_size"))
	}
	if _, ok := s[`ferry_sidekiq_queue_size{queue="wrongtype"}`]; ok {
		t.Error("a queue key that is not a list was reported")
	}
	cut := `ferry_sidekiq_queue_size{queue="` + long[:promferry.MaxLabelLength] + `"}`
	if s[cut] != 1 {
		t.Errorf("long queue name: %v, want the first of the two names cut to the same label, once", s[cut])
	}
	if s["ferry_sidekiq_queue_size{queue=\"\ufffdbad\"}"] != 1 {
		t.Errorf("invalid UTF-8 queue name not made valid: %v", series(s, "ferry_sidekiq_queue_size"))
	}
	if s[`ferry_sidekiq_processed_total{}`] != 0 || s[`ferry_sidekiq_processes{}`] != 3 || s[`ferry_sidekiq_busy{}`] != 1<<20 {
		t.Errorf("processed %v, processes %v, busy %v; want 0, 3, %d",
			s[`ferry_sidekiq_processed_total{}`], s[`ferry_sidekiq_processes{}`], s[`ferry_sidekiq_busy{}`], 1<<20)
	}
}

// TestStatsCollectorRedisDown: a failed refresh reports up 0 and counts the error, keeps
// serving the last figures, and does not retry before Interval has passed.
func TestStatsCollectorRedisDown(t *testing.T) {
	t.Parallel()
	rdb, mr := testutil.NewEmbeddedRedis(t)
	now := time.Now()
	seedSidekiq(t, rdb, "", now)
	clk := testutil.NewFakeClock(now)
	c := promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Clock: clk, Timeout: slowRedis})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if s := samples(t, reg); s[`ferry_sidekiq_up{}`] != 1 {
		t.Fatal("first refresh failed")
	}
	mr.Close()
	clk.Set(now.Add(5 * time.Second))
	s := samples(t, reg)
	if s[`ferry_sidekiq_up{}`] != 0 || s[`ferry_sidekiq_refresh_errors_total{}`] != 1 {
		t.Errorf("with Redis down: up %v, errors %v; want 0 and 1", s[`ferry_sidekiq_up{}`], s[`ferry_sidekiq_refresh_errors_total{}`])
	}
	if s[`ferry_sidekiq_dead_size{}`] != 4 || s[`ferry_sidekiq_stats_age_seconds{}`] != 5 {
		t.Errorf("last figures: dead %v, age %v; want 4 and 5", s[`ferry_sidekiq_dead_size{}`], s[`ferry_sidekiq_stats_age_seconds{}`])
	}
	s = samples(t, reg)
	if s[`ferry_sidekiq_refresh_errors_total{}`] != 1 {
		t.Error("a scrape within the interval tried Redis again")
	}
}
