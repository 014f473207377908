package periodic

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/sidekiq"
)

// newTestScheduler returns a Scheduler on rdb whose clock (and its Client's) is clk.
func newTestScheduler(t testing.TB, rdb redis.UniversalClient, clk *clock.Fake, cfg Config, mws ...sidekiq.Middleware) *Scheduler {
	t.Helper()
	client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: cfg.Namespace, Clock: clk})
	client.Use(mws...)
	cfg.Clock = clk
	return New(rdb, client, &cfg)
}

// mustAdd adds j or fails the test.
func mustAdd(t testing.TB, s *Scheduler, j Job) {
	t.Helper()
	if err := s.Add(j); err != nil {
		t.Fatal(err)
	}
}

// mustPass runs one pass at the scheduler's clock time, failing the test on an error.
func mustPass(t testing.TB, s *Scheduler) {
	t.Helper()
	if err := s.pass(context.Background(), s.cfg.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// queueJobs returns the jobs in queue q, oldest first.
func queueJobs(t testing.TB, rdb redis.UniversalClient, q string) []*sidekiq.Job {
	t.Helper()
	raw, err := rdb.LRange(context.Background(), q, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*sidekiq.Job, 0, len(raw))
	for i := len(raw) - 1; i >= 0; i-- {
		j, err := sidekiq.ParseJobString(raw[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

// enqueuedTicks returns the members of a job's enqueued set as times, sorted.
func enqueuedTicks(t testing.TB, rdb redis.UniversalClient, key string) []time.Time {
	t.Helper()
	members, err := rdb.ZRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]time.Time, 0, len(members))
	for _, m := range members {
		ts, err := time.Parse("2006-01-02T15:04:05Z", m)
		if err != nil {
			t.Fatalf("member %q: %v", m, err)
		}
		out = append(out, ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// guardHolders returns, for each push guard key of the job, the jid it holds.
func guardHolders(t testing.TB, rdb redis.UniversalClient, ns, name string) map[string]string {
	t.Helper()
	ctx := context.Background()
	prefix := ""
	if ns != "" {
		prefix = ns + ":"
	}
	pattern := prefix + strings.TrimSuffix(pushedGuard(name, time.Unix(0, 0)), "0") + "*"
	keys, err := rdb.Keys(ctx, pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := rdb.Get(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// allKeys returns every key in rdb's database.
func allKeys(t testing.TB, rdb redis.UniversalClient) []string {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}
