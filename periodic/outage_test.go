package periodic_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/testutil"
)

// TestRedisRestart: Redis (a private server with an fsynced append-only file, as
// production should run it) is SIGKILLed while two schedulers run an every-second job,
// stays down for 3 s, and comes back. The schedulers ride it out and catch up the ticks
// of the outage (they are within Grace): at the end the claimed ticks run without a gap
// from the first to the last, and each has exactly one job and one push guard.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	ctx := context.Background()
	const job = "through_outage"
	var scheds []*periodic.Scheduler
	s0, rdb := newScheduler(t, srv.URL(), periodic.Config{RefreshInterval: 300 * time.Millisecond, RecoverAfter: time.Second})
	s1, _ := newScheduler(t, srv.URL(), periodic.Config{RefreshInterval: 300 * time.Millisecond, RecoverAfter: time.Second})
	scheds = append(scheds, s0, s1)
	for _, s := range scheds {
		if err := s.Add(periodic.Job{Name: job, Spec: "@every 1s", Class: "OutageJob", Queue: "outage"}); err != nil {
			t.Fatal(err)
		}
		startScheduler(t, s)
	}
	claimed := func() int64 {
		n, _ := rdb.ZCard(ctx, "cron_job:"+job+":enqueued").Result()
		return n
	}
	testutil.Eventually(t, 30*time.Second, "3 ticks before the outage", func() bool { return claimed() >= 4 })
	srv.Kill()
	time.Sleep(3 * time.Second) // the outage: ticks pass while Redis is down
	srv.Restart()
	before := claimed()
	testutil.Eventually(t, 60*time.Second, "5 ticks after the restart, and no claim pending", func() bool {
		return claimed() >= before+5 && rdb.ZCard(ctx, "ferry:cron:pending").Val() == 0
	})
	for _, s := range scheds {
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	members, err := rdb.ZRange(ctx, "cron_job:"+job+":enqueued", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var prev time.Time
	for i, m := range members {
		ts, err := time.Parse("2006-01-02T15:04:05Z", m)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && ts.Sub(prev) != time.Second {
			t.Fatalf("gap between ticks %v and %v", prev, ts)
		}
		prev = ts
	}
	checkOnePerTick(t, rdb, job, "queue:outage", int64(len(members)-1))
}
