package periodic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// base is a fixed instant a little after a whole second, for fake clocks.
var base = time.Date(2026, 12, 1, 10, 0, 0, 200_000_000, time.UTC)

// TestEachTickOnceWithSkewedClocks: three schedulers whose clocks are 3 s behind, right
// and 3 s ahead, each running passes every 250 ms (in their own time) for 90 s, enqueue
// every tick of an every-second job exactly once: the enqueued set holds each second from
// the tick seeded at registration to the newest tick any clock reached, with no gap; the
// queue holds one job per tick; and each tick's push guard names a different job of the
// queue.
func TestEachTickOnceWithSkewedClocks(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		skews := []time.Duration{-3 * time.Second, 0, 3 * time.Second}
		var scheds []*Scheduler
		var clocks []*clock.Fake
		for _, skew := range skews {
			clk := clock.NewFake(base.Add(skew))
			s := newTestScheduler(t, rdb, clk, Config{Namespace: "ns", Location: time.UTC})
			mustAdd(t, s, Job{Name: "tick", Spec: "* * * * * *", Class: "TickJob", Queue: "ticks"})
			scheds, clocks = append(scheds, s), append(clocks, clk)
		}
		const steps = 90 * 4
		for i := 0; i <= steps; i++ {
			for k, s := range scheds {
				clocks[k].Set(base.Add(skews[k] + time.Duration(i)*250*time.Millisecond))
				mustPass(t, s)
			}
		}
		ticks := enqueuedTicks(t, rdb, "ns:cron_job:tick:enqueued")
		newest := base.Add(3*time.Second + steps*250*time.Millisecond).Truncate(time.Second)
		if !ticks[len(ticks)-1].Equal(newest) {
			t.Fatalf("newest tick %v, want %v", ticks[len(ticks)-1], newest)
		}
		for i := 1; i < len(ticks); i++ {
			if ticks[i].Sub(ticks[i-1]) != time.Second {
				t.Fatalf("gap between ticks %v and %v", ticks[i-1], ticks[i])
			}
		}
		jobs := queueJobs(t, rdb, "ns:queue:ticks")
		// The first member is the seed (the tick before registration), never enqueued.
		if len(jobs) != len(ticks)-1 {
			t.Fatalf("%d jobs for %d ticks", len(jobs), len(ticks)-1)
		}
		holders := guardHolders(t, rdb, "ns", "tick")
		if len(holders) != len(jobs) {
			t.Fatalf("%d push guards for %d jobs", len(holders), len(jobs))
		}
		jids := map[string]int{}
		for _, j := range jobs {
			jids[j.JID]++
			if j.Class != "TickJob" || j.Queue != "ticks" || string(j.Args) != "[]" {
				t.Fatalf("job %s", j.Raw())
			}
		}
		for k, jid := range holders {
			if jids[jid] != 1 {
				t.Fatalf("guard %s holds %s, found %d times in the queue", k, jid, jids[jid])
			}
		}
		if n := rdb.ZCard(context.Background(), "ns:ferry:cron:pending").Val(); n != 0 {
			t.Fatalf("%d claims left pending", n)
		}
	})
}

// TestDisabledJobNeverFires: a job added Disabled, and one disabled later (as the Web tab
// does: the status field), enqueue nothing while disabled; enabling resumes with the
// next ticks only, not the ones that passed while it was disabled.
func TestDisabledJobNeverFires(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		clk := clock.NewFake(base)
		s := newTestScheduler(t, rdb, clk, Config{Location: time.UTC})
		mustAdd(t, s, Job{Name: "off", Spec: "* * * * * *", Class: "OffJob", Queue: "off", Disabled: true})
		mustAdd(t, s, Job{Name: "later", Spec: "* * * * * *", Class: "LaterJob", Queue: "later"})
		run := func(d time.Duration) {
			for end := clk.Now().Add(d); clk.Now().Before(end); clk.Advance(250 * time.Millisecond) {
				mustPass(t, s)
			}
		}
		run(10 * time.Second)
		if n := len(queueJobs(t, rdb, "queue:off")); n != 0 {
			t.Fatalf("disabled job enqueued %d times", n)
		}
		// Passes from 10:00:00.2 to 10:00:09.95: the ticks of seconds 1 to 9.
		if n := len(queueJobs(t, rdb, "queue:later")); n != 9 {
			t.Fatalf("enabled job enqueued %d times in 10 s, want 9", n)
		}
		if err := Disable(ctx, rdb, "", "later"); err != nil {
			t.Fatal(err)
		}
		// A new scheduler, too, and the same one after a refresh, honour the status.
		run(20 * time.Second)
		if n := len(queueJobs(t, rdb, "queue:later")); n != 9 {
			t.Fatalf("disabled job enqueued: %d jobs", n)
		}
		if err := Enable(ctx, rdb, "", "later"); err != nil {
			t.Fatal(err)
		}
		run(5 * time.Second)
		// Seconds 30 to 34; none of the 20 that passed while disabled.
		if n := len(queueJobs(t, rdb, "queue:later")); n != 14 {
			t.Fatalf("after enabling for 5 s: %d jobs, want 14", n)
		}
		if n := len(queueJobs(t, rdb, "queue:off")); n != 0 {
			t.Fatalf("disabled job enqueued %d times", n)
		}
		if err := Disable(ctx, rdb, "", "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Disable(nope) = %v", err)
		}
	})
}

// TestMissedTicksSkippedOrCaughtUp: after every scheduler was down over a daily job's
// tick, a scheduler coming back 7 hours later skips it by default; with CatchUp it
// enqueues it once, however many schedulers come back, and the next tick normally.
func TestMissedTicksSkippedOrCaughtUp(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		day1 := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
		for _, catchUp := range []bool{false, true} {
			name, queue := "skip", "skip"
			if catchUp {
				name, queue = "catchup", "catchup"
			}
			job := Job{Name: name, Spec: "0 3 * * *", Class: "DailyJob", Queue: queue, CatchUp: catchUp, Location: time.UTC}
			clk := clock.NewFake(day1)
			first := newTestScheduler(t, rdb, clk, Config{})
			mustAdd(t, first, job)
			mustPass(t, first) // registers; 1 Dec 03:00 has not come yet
			// Down from 01:00 to 10:00 on 2 Dec: the ticks of 1 and 2 Dec 03:00 are missed.
			back := day1.Add(33 * time.Hour)
			var again []*Scheduler
			for range 3 {
				c := clock.NewFake(back)
				s := newTestScheduler(t, rdb, c, Config{})
				mustAdd(t, s, job)
				mustPass(t, s)
				mustPass(t, s)
				again = append(again, s)
			}
			want := 0
			if catchUp {
				want = 1
			}
			if n := len(queueJobs(t, rdb, "queue:"+queue)); n != want {
				t.Fatalf("CatchUp %v: %d jobs after the downtime, want %d", catchUp, n, want)
			}
			// The next tick (3 Dec 03:00) runs once in either case.
			for _, s := range again {
				s.cfg.Clock.(*clock.Fake).Set(time.Date(2026, 12, 3, 3, 0, 1, 0, time.UTC))
				mustPass(t, s)
			}
			if n := len(queueJobs(t, rdb, "queue:"+queue)); n != want+1 {
				t.Fatalf("CatchUp %v: %d jobs after the next tick, want %d", catchUp, n, want+1)
			}
		}
	})
}

// TestPausedSchedulerCoversTicksWithinGrace: a scheduler that misses 5 s of passes (a
// stall) enqueues each of the 5 ticks when it resumes; after a 60 s stall with a 10 s
// Grace it enqueues the 10 ticks within Grace and skips the 50 older ones.
func TestPausedSchedulerCoversTicksWithinGrace(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	clk := clock.NewFake(base)
	s := newTestScheduler(t, rdb, clk, Config{Grace: 10 * time.Second})
	mustAdd(t, s, Job{Name: "sec", Spec: "* * * * * *", Class: "SecJob", Location: time.UTC})
	mustPass(t, s)
	clk.Advance(5 * time.Second)
	mustPass(t, s)
	if n := len(queueJobs(t, rdb, "queue:default")); n != 5 {
		t.Fatalf("after a 5 s stall: %d jobs, want 5", n)
	}
	clk.Advance(60 * time.Second)
	mustPass(t, s)
	if n := len(queueJobs(t, rdb, "queue:default")); n != 5+10 {
		t.Fatalf("after a 60 s stall with a 10 s grace: %d jobs, want 15", n)
	}
}

// TestInterruptedPushIsRecoveredOnce: a tick claimed by a scheduler whose push then fails
// (as if it died between claim and push) is pushed by another scheduler after
// RecoverAfter, once; a tick whose push went through but whose claim was not cleared (it
// died after pushing) is not pushed again.
func TestInterruptedPushIsRecoveredOnce(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, pushedFirst := range []bool{false, true} {
			queue := "lost"
			if pushedFirst {
				queue = "pushed"
			}
			clk := clock.NewFake(base)
			boom := errors.New("killed")
			failing := sidekiq.PushFunc(func(ctx context.Context, j *sidekiq.Job, next func(context.Context) error) error {
				if pushedFirst {
					if err := next(ctx); err != nil {
						return err
					}
				}
				return boom
			})
			job := Job{Name: queue, Spec: "* * * * * *", Class: "RecJob", Queue: queue, Location: time.UTC}
			dying := newTestScheduler(t, rdb, clk, Config{RecoverAfter: 5 * time.Second}, failing)
			mustAdd(t, dying, job)
			mustPass(t, dying)
			clk.Advance(time.Second)
			mustPass(t, dying) // claims base+1s, push fails
			if n := rdb.ZCard(context.Background(), "ferry:cron:pending").Val(); n != 1 {
				t.Fatalf("%d pending claims, want 1", n)
			}
			other := newTestScheduler(t, rdb, clk, Config{RecoverAfter: 5 * time.Second, OwnJobsOnly: true})
			mustPass(t, other) // too early to recover
			want := 0
			if pushedFirst {
				want = 1
			}
			if n := len(queueJobs(t, rdb, "queue:"+queue)); n != want {
				t.Fatalf("%d jobs before recovery, want %d", n, want)
			}
			clk.Advance(6 * time.Second)
			mustPass(t, other)
			mustPass(t, other)
			if n := len(queueJobs(t, rdb, "queue:"+queue)); n != 1 {
				t.Fatalf("%d jobs after recovery, want 1", n)
			}
			if n := rdb.ZCard(context.Background(), "ferry:cron:pending").Val(); n != 0 {
				t.Fatalf("%d pending claims after recovery", n)
			}
		}
	})
}

// TestSpecChangedInRedis: when Ruby (or another deploy) rewrites a job's cron field, the
// scheduler notices at its next claim and follows the new spec.
func TestSpecChangedInRedis(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		clk := clock.NewFake(base)
		s := newTestScheduler(t, rdb, clk, Config{Location: time.UTC, RefreshInterval: time.Hour})
		writeRubyJob(t, rdb, "", map[string]string{"name": "r", "cron": "* * * * * *", "klass": "RJob",
			"message": `{"class":"RJob","queue":"r","args":[]}`})
		mustPass(t, s)
		for range 4 {
			clk.Advance(time.Second)
			mustPass(t, s)
		}
		// A job Ruby wrote has no enqueued set yet: its latest tick (10:00:00) runs, as a
		// sidekiq-cron poller would run it, then seconds 1 to 4.
		if n := len(queueJobs(t, rdb, "queue:r")); n != 5 {
			t.Fatalf("%d jobs, want 5", n)
		}
		if err := rdb.HSet(ctx, "cron_job:r", "cron", "*/10 * * * * *").Err(); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			clk.Advance(time.Second)
			mustPass(t, s)
		}
		// Second 5 is refused by the claim ("changed"); then only seconds 10 and 20, the
		// new spec's ticks.
		if n := len(queueJobs(t, rdb, "queue:r")); n != 7 {
			t.Fatalf("%d jobs, want 7", n)
		}
	})
}

// writeRubyJob writes a job hash and its cron_jobs member as sidekiq-cron would.
func writeRubyJob(t testing.TB, rdb redis.UniversalClient, ns string, fields map[string]string) {
	t.Helper()
	ctx := context.Background()
	prefix := ""
	if ns != "" {
		prefix = ns + ":"
	}
	name := fields["name"]
	if err := rdb.SAdd(ctx, prefix+"cron_jobs", "cron_job:"+name).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, prefix+"cron_job:"+name, fields).Err(); err != nil {
		t.Fatal(err)
	}
}
