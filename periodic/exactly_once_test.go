package periodic_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyPoller is the jobs file of a Sidekiq 6.4.1 process running sidekiq-cron's poller
// every second (cron_poll_interval 1; poll_interval_average set so the poller does not
// first wait 10 s). A client middleware marks the jobs Ruby enqueues, and every claim
// attempt is printed with the job's name and its outcome, so the test can tell that the
// poller ran and contended for the ticks.
const rubyPoller = `
require "sidekiq-cron"
Sidekiq.options[:cron_poll_interval] = 1
Sidekiq.options[:poll_interval_average] = 1
class MarkRuby
  def call(worker_class, job, queue, redis_pool)
    job["pushed_by"] = "ruby"
    yield
  end
end
Sidekiq.configure_server { |c| c.client_middleware { |ch| ch.add MarkRuby } }
module Probe
  def should_enque?(time)
    won = super
    $stdout.puts("FERRY-PROBE #{name} #{won ? "won" : "lost"}")
    won
  end
end
Sidekiq::Cron::Job.prepend(Probe)
`

// TestExactlyOnceWithRubyPoller: three Ferry schedulers (each with its own connections,
// and a clock 1.3 to 1.7 s behind, so that the Ruby poller, whose clock is right, wins
// some ticks: sidekiq-cron takes a tick only from one second after it, as fugit's
// previous_time excludes the current second) and a Ruby sidekiq-cron poller polling every second share a job that ticks every second
// for 30 seconds (the spec "S-S+29 M H * * * UTC" names the 30 ticks, chosen a few
// seconds ahead once everything runs), and together enqueue exactly 30 jobs: one per
// tick. The count does not depend on timing: each tick is claimed once in the shared
// enqueued set, each claim pushes one job, and the test waits for all 30 claims however
// slow the machine (a tick stays claimable for a minute). Ferry's pushes are identified
// by their push guards (one per tick, naming a job in the queue), Ruby's by a payload
// mark, and Ruby's wins match the claims its poller reported winning.
func TestExactlyOnceWithRubyPoller(t *testing.T) {
	t.Parallel()
	requireSidekiqCron(t)
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	var created struct {
		OK bool `json:"ok"`
	}
	rubyCron(t, db.URL, `Sidekiq::Cron::Job.create(name: "warmup", cron: "0 0 1 1 *", class: "Nothing", queue: "ruby_only")
puts JSON.generate({"ok" => true})`, &created)
	ruby := testsuite.StartSidekiq(t, db.URL, rubyPoller, "-q", "ruby_only", "-c", "1")
	testutil.Eventually(t, 60*time.Second, "the Ruby poller's first poll", func() bool {
		return strings.Contains(ruby.Output(), "FERRY-PROBE warmup")
	})

	var name string
	var start time.Time
	var scheds []*periodic.Scheduler
	for attempt := 1; ; attempt++ {
		var spec string
		name = fmt.Sprintf("every_second_%d", attempt)
		start, spec = window(time.Now(), 8*time.Second)
		scheds = nil
		for _, lag := range []time.Duration{1300 * time.Millisecond, 1500 * time.Millisecond, 1700 * time.Millisecond} {
			s, _ := newScheduler(t, db.URL, periodic.Config{RefreshInterval: time.Second, Clock: offsetClock(-lag)})
			if err := s.Add(periodic.Job{Name: name, Spec: spec, Class: "EveryJob", Queue: "every"}); err != nil {
				t.Fatal(err)
			}
			startScheduler(t, s)
			scheds = append(scheds, s)
		}
		testutil.Eventually(t, 30*time.Second, "the job in Redis", func() bool {
			return db.Client.Exists(ctx, "cron_job:"+name+":enqueued").Val() == 1
		})
		if time.Until(start) > 2*time.Second {
			break // every scheduler has run its first pass before the first tick
		}
		if attempt == 3 {
			t.Fatalf("the machine took more than 6 s to start three schedulers, three times")
		}
		for _, s := range scheds {
			_ = s.Stop(ctx)
		}
		db.Client.SRem(ctx, "cron_jobs", "cron_job:"+name)
		db.Client.Del(ctx, "cron_job:"+name)
	}
	last := start.Add(29 * time.Second)
	inWindow := func() int {
		members, err := db.Client.ZRange(ctx, "cron_job:"+name+":enqueued", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range members {
			ts, err := time.Parse("2006-01-02T15:04:05Z", m)
			if err != nil {
				t.Fatalf("member %q", m)
			}
			if !ts.Before(start) && !ts.After(last) {
				n++
			} else if !ts.Before(start.Add(-time.Hour)) {
				t.Fatalf("a tick outside the window was claimed: %s", m)
			}
		}
		return n
	}
	testutil.Eventually(t, time.Until(last)+90*time.Second, "30 ticks claimed", func() bool { return inWindow() == 30 })
	// Stop everyone, letting a claim in progress finish its push.
	ruby.Stop(30 * time.Second)
	for _, s := range scheds {
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := inWindow(); n != 30 {
		t.Fatalf("%d ticks claimed", n)
	}
	raw, err := db.Client.LRange(ctx, "queue:every", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 30 {
		t.Fatalf("%d jobs enqueued for 30 ticks", len(raw))
	}
	jids := map[string]int{}
	rubyPushed := 0
	for _, r := range raw {
		j, err := sidekiq.ParseJobString(r)
		if err != nil {
			t.Fatal(err)
		}
		jids[j.JID]++
		var by string
		if ok, _ := j.Get("pushed_by", &by); ok && by == "ruby" {
			rubyPushed++
		}
	}
	guards, err := db.Client.Keys(ctx, "ferry:cron:pushed:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guards {
		jid := db.Client.Get(ctx, g).Val()
		if jids[jid] != 1 {
			t.Fatalf("push guard %s names job %s, in the queue %d times", g, jid, jids[jid])
		}
	}
	if len(guards)+rubyPushed != 30 {
		t.Fatalf("%d Ferry pushes + %d Ruby pushes for 30 ticks", len(guards), rubyPushed)
	}
	won := strings.Count(ruby.Output(), "FERRY-PROBE "+name+" won")
	attempts := strings.Count(ruby.Output(), "FERRY-PROBE "+name+" ")
	if won != rubyPushed {
		t.Fatalf("the Ruby poller won %d claims and pushed %d jobs", won, rubyPushed)
	}
	if attempts == 0 {
		t.Fatalf("the Ruby poller never tried the job")
	}
	if n := db.Client.ZCard(ctx, "ferry:cron:pending").Val(); n != 0 {
		t.Fatalf("%d claims left pending", n)
	}
	t.Logf("30 ticks: %d enqueued by Ferry, %d by Ruby (which tried %d times)", len(guards), rubyPushed, attempts)
}

// window returns the first of 30 consecutive whole seconds, all within one minute, at
// least lead from now, and the spec that ticks at exactly those seconds.
func window(now time.Time, lead time.Duration) (time.Time, string) {
	start := now.Add(lead).Truncate(time.Second).Add(time.Second).UTC()
	if start.Second() > 30 {
		start = start.Truncate(time.Minute).Add(time.Minute)
	}
	spec := fmt.Sprintf("%d-%d %d %d * * * UTC", start.Second(), start.Second()+29, start.Minute(), start.Hour())
	return start, spec
}

// offsetClock is the wall clock moved by a fixed offset: a host whose clock is off.
type offsetClock time.Duration

func (o offsetClock) Now() time.Time { return time.Now().Add(time.Duration(o)) }
