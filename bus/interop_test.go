package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyApp is the Ruby application of the interop tests: queue-bus's dispatch DSL, with the
// same two subscriptions as goApp. Its subscribers record what they get in Redis.
const rubyApp = `
QueueBus.dispatch("rubyapp") do
  subscribe "user_created" do |attrs|
    bus_record("rubyapp", "user_created", attrs)
  end
  subscribe "pro_signup", "bus_event_type" => "user_created", "plan" => "pro" do |attrs|
    bus_record("rubyapp", "pro_signup", attrs)
  end
end
`

// registerRuby writes the Ruby app's subscriptions (rake queuebus:subscribe).
func registerRuby(t *testing.T, v rubyBus, url, app string) {
	t.Helper()
	runRuby(t, v, url, app+"\nraise 'nothing subscribed' if QueueBus::TaskManager.new(false).subscribe! == 0\n")
}

// rubyGot returns the events a Ruby subscriber recorded.
func rubyGot(t *testing.T, rdb redis.UniversalClient, key string) []map[string]any {
	t.Helper()
	raws, err := rdb.LRange(context.Background(), "rubygot:"+key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(raws))
	for i, r := range raws {
		dec := json.NewDecoder(strings.NewReader(r))
		dec.UseNumber()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func rubyCount(rdb redis.UniversalClient, key string) int64 {
	return rdb.LLen(context.Background(), "rubygot:"+key).Val()
}

// TestInteropWithRuby: a Rails-style app on sidekiq-bus and a Go app on Ferry share one
// Redis, each with subscriptions, each publishing. With either side driving, every
// subscriber gets each matching event exactly once, with the same bus_id and attributes.
// Sidekiq 6.4.1 + sidekiq-bus 1.1.0 and Sidekiq 7.3.10 + sidekiq-bus 3.0.0.
func TestInteropWithRuby(t *testing.T) {
	t.Parallel()
	for _, v := range rubyBuses {
		for _, driver := range []string{"go", "ruby"} {
			t.Run(fmt.Sprintf("%s/sidekiq-%s/%s-drives", v.Name, v.Sidekiq, driver), func(t *testing.T) {
				t.Parallel()
				testInterop(t, v, driver == "go")
			})
		}
	}
}

func testInterop(t *testing.T, v rubyBus, goDrives bool) {
	requireRubyBus(t, v)
	db := testutil.RealRedis(t)
	ctx := context.Background()
	rec := newRecorder()

	goApp := bus.NewApp(db.Client, "goapp", nil)
	goApp.Subscribe("user_created", rec.handler())
	goApp.SubscribeMatch("pro_signup", bus.Match{"bus_event_type": "user_created", "plan": "pro"}, rec.handler())
	if err := goApp.Register(ctx); err != nil {
		t.Fatal(err)
	}
	registerRuby(t, v, db.URL, rubyApp)

	goQueues, rubyQueues := goApp.Queues(), []string{"rubyapp_default"}
	if goDrives {
		goQueues = append([]string{bus.IncomingQueue}, goQueues...)
	} else {
		rubyQueues = append([]string{bus.IncomingQueue}, rubyQueues...)
	}
	srv := sidekiq.NewServer(db.Client, serverConfig(goQueues...))
	b, err := bus.AttachWith(srv, &bus.Config{RideOnly: !goDrives}, goApp)
	if err != nil {
		t.Fatal(err)
	}
	stopGo := startServer(t, srv)
	ruby := startRubySidekiq(t, v, db.URL, rubyApp, rubyQueues...)

	runRuby(t, v, db.URL, `
QueueBus.publish("user_created", "user_id" => 1, "plan" => "pro", "tags" => ["a", "b"], "price" => 9.5)
QueueBus.publish("user_created", "user_id" => 2, "plan" => "free")
`)
	client := sidekiq.NewClient(db.Client, nil)
	goIDs := map[int64]string{}
	for _, e := range []struct {
		id   int64
		plan string
	}{{3, "pro"}, {4, "free"}} {
		id, err := bus.Publish(ctx, client, "user_created",
			map[string]any{"user_id": e.id, "plan": e.plan, "nested": map[string]any{"a": []any{1, "x"}}}, bus.Hostname("go-host"))
		if err != nil {
			t.Fatal(err)
		}
		goIDs[e.id] = id
	}

	rec.waitFor(t, 60*time.Second, "every Go and Ruby subscriber to get its events", func() bool {
		return rec.count("goapp/user_created") >= 4 && rec.count("goapp/pro_signup") >= 2 &&
			rubyCount(db.Client, "rubyapp/user_created") >= 4 && rubyCount(db.Client, "rubyapp/pro_signup") >= 2
	})
	// Stop both sides (Sidekiq finishes its running jobs on TERM) before counting, so a
	// duplicate still in flight would be seen.
	ruby.stop(15 * time.Second)
	stopGo()

	wantIDs := map[string][]int64{"user_created": {1, 2, 3, 4}, "pro_signup": {1, 3}}
	busIDs := map[int64]map[string]bool{} // user_id -> set of bus_ids seen anywhere
	note := func(uid int64, id string) {
		if busIDs[uid] == nil {
			busIDs[uid] = map[string]bool{}
		}
		busIDs[uid][id] = true
	}
	for sub, ids := range wantIDs {
		var goGot, rubyGotIDs []int64
		for _, ev := range rec.events("goapp/" + sub) {
			uid, _ := ev.Int("user_id")
			goGot = append(goGot, uid)
			note(uid, ev.ID())
			if q, _ := ev.String("bus_rider_queue"); q != "goapp_default" {
				t.Errorf("Go subscriber got bus_rider_queue %q", q)
			}
			if uid == 1 {
				if p, ok := ev.Float("price"); !ok || p != 9.5 {
					t.Errorf("price from Ruby = %v (%v)", p, ok)
				}
				var tags []string
				if _, err := ev.Decode("tags", &tags); err != nil || strings.Join(tags, ",") != "a,b" {
					t.Errorf("tags from Ruby = %v (%v)", tags, err)
				}
				if h, _ := ev.String("bus_app_hostname"); h != "ruby-host" {
					t.Errorf("bus_app_hostname of a Ruby event = %q", h)
				}
			}
		}
		for _, ev := range rubyGot(t, db.Client, "rubyapp/"+sub) {
			uid := num(t, ev["user_id"])
			rubyGotIDs = append(rubyGotIDs, uid)
			note(uid, ev["bus_id"].(string))
			for k, want := range map[string]string{"bus_rider_app_key": "rubyapp", "bus_rider_sub_key": sub,
				"bus_rider_queue": "rubyapp_default", "bus_event_type": "user_created"} {
				if ev[k] != want {
					t.Errorf("Ruby subscriber %s got %s = %v, want %s", sub, k, ev[k], want)
				}
			}
			for _, k := range []string{"bus_published_at", "bus_driven_at", "bus_executed_at"} {
				if n := num(t, ev[k]); n < time.Now().Add(-5*time.Minute).Unix() {
					t.Errorf("Ruby subscriber got %s = %d", k, n)
				}
			}
			if uid == 3 {
				if ev["bus_app_hostname"] != "go-host" {
					t.Errorf("bus_app_hostname of a Go event = %v", ev["bus_app_hostname"])
				}
				nested, _ := json.Marshal(ev["nested"])
				if string(nested) != `{"a":[1,"x"]}` {
					t.Errorf("nested attribute from Go arrived as %s", nested)
				}
			}
		}
		if !sameInts(goGot, ids) {
			t.Errorf("Go subscriber %s got user_ids %v, want %v once each", sub, goGot, ids)
		}
		if !sameInts(rubyGotIDs, ids) {
			t.Errorf("Ruby subscriber %s got user_ids %v, want %v once each", sub, rubyGotIDs, ids)
		}
	}
	for uid, ids := range busIDs {
		if len(ids) != 1 {
			t.Errorf("event of user %d arrived with %d bus_ids: %v", uid, len(ids), ids)
		}
		if goID, ok := goIDs[uid]; ok && !ids[goID] {
			t.Errorf("event of user %d: Publish returned %s, subscribers got %v", uid, goID, ids)
		}
	}
	st := b.Stats()
	switch {
	case goDrives && (st.Driven != 4 || st.Delivered != 12):
		t.Errorf("Go drove %d events into %d jobs; want 4 into 12", st.Driven, st.Delivered)
	case !goDrives && st.Driven != 0:
		t.Errorf("Go drove %d events while Ruby drives", st.Driven)
	}
	for _, q := range []string{"queue:bus_incoming", "queue:goapp_default", "queue:rubyapp_default", "retry", "dead"} {
		if n := db.Client.Exists(ctx, q).Val(); n != 0 {
			t.Errorf("%s is not empty at the end", q)
		}
	}
}
