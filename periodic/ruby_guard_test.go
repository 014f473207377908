package periodic

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/internal/testsuite"
)

// rubyClaim asks sidekiq-cron 1.8.0 to claim and enqueue FERRY_JOB's tick as its poller
// would at FERRY_AT (float seconds): should_enque? (status, age and last-enqueue checks,
// then its ZADD), then enque! if it won. With FERRY_FORGET set it first drops
// last_enqueue_time, as if its Job.all had run before the last enqueue was recorded, so
// that only the shared ZADD can stop it.
const rubyClaim = `
require "sidekiq-cron"
name = ENV.fetch("FERRY_JOB")
Sidekiq.redis { |c| c.hdel("cron_job:#{name}", "last_enqueue_time") } if ENV["FERRY_FORGET"] == "1"
job = Sidekiq::Cron::Job.find(name)
at = Time.at(Float(ENV.fetch("FERRY_AT"))).utc
won = job.should_enque?(at)
job.enque!(at) if won
puts JSON.generate({"won" => won ? true : false, "tick" => job.send(:formated_last_time, at)})
`

// TestGuardSharedWithRuby: a Ferry scheduler and sidekiq-cron's own claim code contend
// for the same ticks, in both directions: a tick Ruby claimed is "taken" for Ferry, a tick
// Ferry claimed is refused by Ruby's ZADD (with last_enqueue_time out of the way), and the
// queue holds one job per tick, Ruby's without a Ferry push guard.
func TestGuardSharedWithRuby(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	if out, err := exec.Command("ruby", "-e", `require "sidekiq"; require "sidekiq-cron"`).CombinedOutput(); err != nil {
		testsuite.Unavailable(t, "ruby cannot load sidekiq-cron: %v: %s", err, out)
	}
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	clk := clock.NewFake(base) // 10:00:00.2
	s := newTestScheduler(t, db.Client, clk, Config{Location: time.UTC})
	mustAdd(t, s, Job{Name: "shared", Spec: "* * * * * *", Class: "SharedJob", Queue: "shared"})
	mustPass(t, s) // registers, 10:00:00 seeded

	ruby := func(at time.Time, forget bool) (bool, string) {
		t.Helper()
		f := "0"
		if forget {
			f = "1"
		}
		var out struct {
			Won  bool   `json:"won"`
			Tick string `json:"tick"`
		}
		res := testsuite.Ruby(t, db.URL, rubyClaim, testsuite.WithEnv("FERRY_JOB=shared",
			fmt.Sprintf("FERRY_AT=%.3f", epoch(at)), "FERRY_FORGET="+f))
		if err := json.Unmarshal([]byte(res), &out); err != nil {
			t.Fatalf("ruby printed %q", res)
		}
		return out.Won, out.Tick
	}
	// fugit's previous_time leaves out the current second: at 10:00:02.5 Ruby's tick is
	// 10:00:01.
	if won, tick := ruby(base.Add(2300*time.Millisecond), false); !won || tick != "2026-12-01T10:00:01Z" {
		t.Fatalf("Ruby at 10:00:02.5: won %v tick %s", won, tick)
	}
	clk.Set(base.Add(2500 * time.Millisecond)) // 10:00:02.7: ticks 01 (Ruby's) and 02
	mustPass(t, s)
	if won, tick := ruby(base.Add(3300*time.Millisecond), true); won || tick != "2026-12-01T10:00:02Z" {
		t.Fatalf("Ruby at 10:00:03.5 claimed Ferry's tick %s", tick)
	}
	jobs := queueJobs(t, db.Client, "queue:shared")
	if len(jobs) != 2 {
		t.Fatalf("%d jobs for 2 ticks", len(jobs))
	}
	holders := guardHolders(t, db.Client, "", "shared")
	if len(holders) != 1 {
		t.Fatalf("%d Ferry push guards, want 1 (tick 02)", len(holders))
	}
	for _, jid := range holders {
		if jid != jobs[1].JID {
			t.Fatalf("Ferry's guard names %s; the queue holds %s (Ruby's) then %s", jid, jobs[0].JID, jobs[1].JID)
		}
	}
	ticks := enqueuedTicks(t, db.Client, "cron_job:shared:enqueued")
	if len(ticks) != 3 || !ticks[2].Equal(base.Truncate(time.Second).Add(2*time.Second)) {
		t.Fatalf("enqueued set %v", ticks)
	}
	if n := db.Client.ZCard(ctx, "ferry:cron:pending").Val(); n != 0 {
		t.Fatalf("%d pending", n)
	}
}
