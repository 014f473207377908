package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// heartbeatBus attaches a bus with a fake clock to a server that is not started: enough
// to run the heartbeat.
func heartbeatBus(t *testing.T, rdb redis.UniversalClient, clock *testutil.FakeClock, backfill int) *bus.Bus {
	t.Helper()
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: []string{bus.IncomingQueue}})
	b, err := bus.AttachWith(srv, &bus.Config{Clock: clock, HeartbeatBackfill: backfill, Location: time.UTC, Hostname: "hb"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// heartbeatMinutes takes the heartbeat events waiting on bus_incoming and returns their
// epoch_minutes.
func heartbeatMinutes(t *testing.T, rdb redis.UniversalClient) []int64 {
	t.Helper()
	var out []int64
	for _, job := range queueJobs(t, rdb.(*redis.Client), bus.IncomingQueue) {
		ev := eventOf(t, job)
		if ev["bus_event_type"] != bus.HeartbeatEvent {
			t.Fatalf("not a heartbeat: %v", ev)
		}
		out = append(out, num(t, ev["epoch_minutes"]))
	}
	rdb.Del(context.Background(), "queue:"+bus.IncomingQueue)
	return out
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	clock := testutil.NewFakeClock(start)
	b := heartbeatBus(t, db.Client, clock, 0)
	m0 := start.Unix() / 60

	steps := []struct {
		advance time.Duration
		want    []int64
	}{
		{0, []int64{m0}},                                   // the first beat: this minute only
		{20 * time.Second, nil},                            // the same minute: nothing
		{time.Minute, []int64{m0 + 1}},                     // the next minute
		{3 * time.Minute, []int64{m0 + 2, m0 + 3, m0 + 4}}, // missed minutes are published
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		n, err := bus.RunHeartbeat(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := heartbeatMinutes(t, db.Client); n != len(s.want) || !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: published %d: %v, want %v", i, n, got, s.want)
		}
	}
	// After a long outage only HeartbeatBackfill (60) minutes are published, ending now.
	clock.Advance(10 * time.Hour)
	if _, err := bus.RunHeartbeat(ctx, b); err != nil {
		t.Fatal(err)
	}
	got := heartbeatMinutes(t, db.Client)
	now := clock.Now().Unix() / 60
	if len(got) != 60 || got[0] != now-59 || got[59] != now {
		t.Fatalf("after 10 hours: %d minutes, %d..%d; want 60 ending at %d", len(got), got[0], got[len(got)-1], now)
	}
	if b.Stats().Heartbeats != 65 {
		t.Errorf("Stats().Heartbeats = %d", b.Stats().Heartbeats)
	}
	// Another process holds the lock (its expiry is in the future): nothing.
	clock.Advance(time.Minute)
	db.Client.Set(ctx, "bus:heartbeat:lock", clock.Now().Unix()+30, 0)
	if n, _ := bus.RunHeartbeat(ctx, b); n != 0 {
		t.Fatalf("published %d under another process's lock", n)
	}
	// An expired lock is taken over.
	db.Client.Set(ctx, "bus:heartbeat:lock", clock.Now().Unix()-1, 0)
	if n, _ := bus.RunHeartbeat(ctx, b); n != 1 {
		t.Fatalf("published %d past an expired lock, want 1", n)
	}
	if db.Client.Exists(ctx, "bus:heartbeat:lock").Val() != 0 {
		t.Error("the lock was not released")
	}
	// Without a limit every missed minute is published, as queue-bus does.
	unlimited := heartbeatBus(t, db.Client, clock, -1)
	clock.Advance(90 * time.Minute)
	if n, _ := bus.RunHeartbeat(ctx, unlimited); n != 90 {
		t.Fatalf("unlimited backfill published %d, want 90", n)
	}
}

// TestHeartbeatWithRuby: Ruby's QueueBus::Heartbeat and Go's share the lock and the last
// minute, so a minute is published once whichever runs; the attributes are Ruby's, with
// the same calendar fields; and the job sidekiq-bus's schedule enqueues (a QueueBus::Worker
// with bus_class_proxy QueueBus::Heartbeat) runs on a Ferry server.
func TestHeartbeatWithRuby(t *testing.T) {
	t.Parallel()
	for _, v := range rubyBuses {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			requireRubyBus(t, v)
			db := realRedis(t)
			ctx := context.Background()

			runRuby(t, v, db.URL, `QueueBus::Heartbeat.perform`)
			rubyJobs := queueJobs(t, db.Client, bus.IncomingQueue)
			if len(rubyJobs) != 1 {
				t.Fatalf("Ruby's heartbeat published %d events", len(rubyJobs))
			}
			rubyEv := eventOf(t, rubyJobs[0])
			m := num(t, rubyEv["epoch_minutes"])
			db.Client.Del(ctx, "queue:"+bus.IncomingQueue)

			// Go in the same minute: nothing; in the next: that minute only.
			clock := testutil.NewFakeClock(time.Unix(m*60+30, 0))
			srv := sidekiq.NewServer(db.Client, serverConfig(bus.IncomingQueue))
			b, err := bus.AttachWith(srv, &bus.Config{Clock: clock, Location: time.Local})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := bus.RunHeartbeat(ctx, b); err != nil || n != 0 {
				t.Fatalf("Go published %d (%v) in the minute Ruby published", n, err)
			}
			clock.Advance(time.Minute)
			if n, err := bus.RunHeartbeat(ctx, b); err != nil || n != 1 {
				t.Fatalf("Go published %d (%v) in the next minute", n, err)
			}
			goJob := queueJobs(t, db.Client, bus.IncomingQueue)[0]
			if gk, rk := keysOf(t, goJob), keysOf(t, rubyJobs[0]); strings.Join(gk, ",") != strings.Join(rk, ",") {
				t.Errorf("heartbeat keys\nGo:   %v\nRuby: %v", gk, rk)
			}
			goEv := eventOf(t, goJob)
			out := runRuby(t, v, db.URL, fmt.Sprintf(`s = %d * 60; t = Time.at(s)
puts JSON.generate({"epoch_seconds" => s, "epoch_minutes" => s / 60, "epoch_hours" => s / 3600, "epoch_days" => s / 86400,
  "minute" => t.min, "hour" => t.hour, "day" => t.day, "month" => t.month, "year" => t.year, "yday" => t.yday, "wday" => t.wday})`, m+1))
			var want map[string]json.Number
			dec := json.NewDecoder(strings.NewReader(out))
			dec.UseNumber()
			if err := dec.Decode(&want); err != nil {
				t.Fatal(err)
			}
			for k, w := range want {
				if goEv[k] != w {
					t.Errorf("%s: Go %v, Ruby %v", k, goEv[k], w)
				}
			}
			db.Client.Del(ctx, "queue:"+bus.IncomingQueue)

			// Ruby in Go's minute: nothing.
			runRuby(t, v, db.URL, fmt.Sprintf(`Time.singleton_class.send(:alias_method, :real_now, :now)
Time.define_singleton_method(:now) { Time.at(%d) }
QueueBus::Heartbeat.perform`, (m+1)*60+40))
			if n := db.Client.LLen(ctx, "queue:"+bus.IncomingQueue).Val(); n != 0 {
				t.Fatalf("Ruby published %d events in the minute Go published", n)
			}

			// The scheduled heartbeat job, as sidekiq-bus's schedule enqueues it, on a
			// Ferry server: one more minute.
			clock.Advance(time.Minute)
			runRuby(t, v, db.URL, `Sidekiq::Client.push("queue" => "bus_incoming", "class" => QueueBus::Worker,
  "args" => [QueueBus::Util.encode("bus_class_proxy" => QueueBus::Heartbeat.name)])`)
			stop := startServer(t, srv)
			testutil.Eventually(t, 30*time.Second, "the heartbeat job to publish and the event to be driven", func() bool {
				st := b.Stats()
				return st.Heartbeats == 2 && st.Driven == 1
			})
			stop()
			if got := db.Client.Get(ctx, "bus:heartbeat:timestamp").Val(); got != fmt.Sprint(m+2) {
				t.Errorf("bus:heartbeat:timestamp = %s, want %d", got, m+2)
			}
		})
	}
}

// TestHeartbeatService: with Config.Heartbeat a started server publishes the current
// minute at once (and its driver drives it), and the service stops with the server.
func TestHeartbeatService(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	srv := sidekiq.NewServer(db.Client, serverConfig(bus.IncomingQueue))
	b, err := bus.AttachWith(srv, &bus.Config{Heartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	stop := startServer(t, srv)
	testutil.Eventually(t, 30*time.Second, "the first heartbeat to be published and driven", func() bool {
		st := b.Stats()
		return st.Heartbeats >= 1 && st.Driven >= 1 && st.Dropped >= 1 // nobody subscribes here
	})
	stop()
	if got := db.Client.Get(context.Background(), "bus:heartbeat:timestamp").Val(); got == "" {
		t.Fatal("no bus:heartbeat:timestamp")
	}
}
