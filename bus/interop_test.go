package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
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
  subscribe "invoice_paid" do |attrs|
    bus_record("rubyapp", "invoice_paid", attrs)
  end
  subscribe "reminder" do |attrs|
    bus_record("rubyapp", "reminder", attrs)
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
// Redis, each with subscriptions, each publishing, with either side driving, on Sidekiq
// 6.4.1 + sidekiq-bus 1.1.0 and 7.3.10 + 3.0.0:
//
//   - every subscriber, Go or Ruby, gets each matching event exactly once, with the same
//     bus_id and the publisher's attributes;
//   - a Go subscriber that fails is retried as a job of its own and gets the event again;
//     the event's other subscribers get it once;
//   - events published for later (PublishAt, publish_at) arrive when due, with their
//     bus_id and bus_delayed_until;
//   - an event nobody subscribes to is dropped (and, when Go drives, counted).
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

// outcomes counts the outcomes of the Go server's bus jobs.
type outcomes struct {
	sidekiq.ObserverDefaults
	retried, succeeded atomic.Int64
	lastErr            atomic.Value // string
}

func (o *outcomes) JobFinished(ev *sidekiq.JobEvent) {
	switch ev.Outcome {
	case sidekiq.OutcomeRetried:
		o.retried.Add(1)
		o.lastErr.Store(ev.Err.Error())
	case sidekiq.OutcomeSucceeded:
		o.succeeded.Add(1)
	}
}

func testInterop(t *testing.T, v rubyBus, goDrives bool) {
	requireRubyBus(t, v)
	db := realRedis(t)
	ctx := context.Background()
	rec := newRecorder()

	var flakyRuns sync.Map // bus_id -> *atomic.Int64
	flaky := bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error {
		n, _ := flakyRuns.LoadOrStore(ev.ID(), new(atomic.Int64))
		if n.(*atomic.Int64).Add(1) == 1 {
			return errors.New("flaky subscriber: first delivery fails")
		}
		rec.add(ev)
		return nil
	})
	goApp := bus.NewApp(db.Client, "goapp", nil)
	goApp.Subscribe("user_created", rec.handler())
	goApp.SubscribeMatch("pro_signup", bus.Match{"bus_event_type": "user_created", "plan": "pro"}, rec.handler())
	goApp.SubscribeMatch("flaky", bus.Match{"bus_event_type": "invoice_paid"}, flaky)
	goApp.SubscribeMatch("steady", bus.Match{"bus_event_type": "invoice_paid"}, rec.handler())
	goApp.Subscribe("reminder", rec.handler())
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
	obs := &outcomes{}
	srv.Observe(obs)
	b, err := bus.AttachWith(srv, &bus.Config{RideOnly: !goDrives}, goApp)
	if err != nil {
		t.Fatal(err)
	}
	stopGo := startServer(t, srv)
	ruby := startRubySidekiq(t, v, db.URL, rubyApp, rubyQueues...)

	due := time.Now().Add(2 * time.Second).Unix()
	runRuby(t, v, db.URL, `
QueueBus.publish("user_created", "user_id" => 1, "plan" => "pro", "tags" => ["a", "b"], "price" => 9.5)
QueueBus.publish("user_created", "user_id" => 2, "plan" => "free")
QueueBus.publish("invoice_paid", "invoice_id" => 1)
QueueBus.publish("nobody_listens", "x" => 1)
QueueBus.publish_at(`+itoa(due)+`, "reminder", "user_id" => 1)
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
	if _, err := bus.Publish(ctx, client, "invoice_paid", map[string]any{"invoice_id": 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(ctx, client, "nobody_listens", map[string]any{"x": 2}); err != nil {
		t.Fatal(err)
	}
	reminderID, err := bus.PublishAt(ctx, client, time.Unix(due, 0), "reminder", map[string]any{"user_id": 3})
	if err != nil {
		t.Fatal(err)
	}

	rec.waitFor(t, 90*time.Second, "every Go and Ruby subscriber to get its events", func() bool {
		return rec.count("goapp/user_created") >= 4 && rec.count("goapp/pro_signup") >= 2 &&
			rec.count("goapp/flaky") >= 2 && rec.count("goapp/steady") >= 2 && rec.count("goapp/reminder") >= 2 &&
			rubyCount(db.Client, "rubyapp/user_created") >= 4 && rubyCount(db.Client, "rubyapp/pro_signup") >= 2 &&
			rubyCount(db.Client, "rubyapp/invoice_paid") >= 2 && rubyCount(db.Client, "rubyapp/reminder") >= 2
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

	// The failing subscriber: retried once per event; the others got each event once.
	invoices := map[string][]int64{}
	for _, sub := range []string{"flaky", "steady"} {
		for _, ev := range rec.events("goapp/" + sub) {
			n, _ := ev.Int("invoice_id")
			invoices[sub] = append(invoices[sub], n)
		}
	}
	for _, ev := range rubyGot(t, db.Client, "rubyapp/invoice_paid") {
		invoices["ruby"] = append(invoices["ruby"], num(t, ev["invoice_id"]))
	}
	for sub, got := range invoices {
		if !sameInts(got, []int64{1, 2}) {
			t.Errorf("%s subscriber got invoices %v, want 1 and 2 once each", sub, got)
		}
	}
	flakyRuns.Range(func(k, n any) bool {
		if runs := n.(*atomic.Int64).Load(); runs != 2 {
			t.Errorf("flaky subscriber ran %d times for %v, want 2 (one failure, one retry)", runs, k)
		}
		return true
	})
	if st := b.Stats(); obs.retried.Load() != 2 || st.Failed != 2 {
		t.Errorf("%d bus jobs retried, %d subscriber runs failed; want 2 and 2 (last error %v)", obs.retried.Load(), st.Failed, obs.lastErr.Load())
	}

	// Delayed events: both arrive when due, with bus_id kept and bus_delayed_until set.
	for _, ev := range rec.events("goapp/reminder") {
		uid, _ := ev.Int("user_id")
		until, _ := ev.Int("bus_delayed_until")
		if until != due || ev.PublishedAt().Unix() < due-1 {
			t.Errorf("reminder for %d: bus_delayed_until %d (want %d), published at %v", uid, until, due, ev.PublishedAt())
		}
		if uid == 3 && ev.ID() != reminderID {
			t.Errorf("reminder from Go arrived with bus_id %s, PublishAt returned %s", ev.ID(), reminderID)
		}
	}
	var rubyReminders []int64
	for _, ev := range rubyGot(t, db.Client, "rubyapp/reminder") {
		rubyReminders = append(rubyReminders, num(t, ev["user_id"]))
		if num(t, ev["bus_delayed_until"]) != due || num(t, ev["bus_published_at"]) < due-1 {
			t.Errorf("Ruby got reminder %v", ev)
		}
		if num(t, ev["user_id"]) == 3 && ev["bus_id"] != reminderID {
			t.Errorf("Ruby got the Go reminder with bus_id %v, PublishAt returned %s", ev["bus_id"], reminderID)
		}
	}
	if !sameInts(rubyReminders, []int64{1, 3}) || rec.count("goapp/reminder") != 2 {
		t.Errorf("reminders: Ruby got %v, Go %d", rubyReminders, rec.count("goapp/reminder"))
	}

	// Totals: 10 events driven (4 user_created, 2 invoice_paid, 2 nobody_listens, 2 reminders
	// published then driven), of which 2 dropped.
	st := b.Stats()
	switch {
	case goDrives && (st.Driven != 10 || st.Dropped != 2 || st.Delivered != 22 || st.Published != 2):
		t.Errorf("Go drove %d events (%d dropped) into %d jobs and published %d delayed ones; want 10 (2) into 22, and 2",
			st.Driven, st.Dropped, st.Delivered, st.Published)
	case !goDrives && (st.Driven != 0 || st.Published != 0):
		t.Errorf("Go drove %d events while Ruby drives", st.Driven)
	}
	for _, q := range []string{"queue:bus_incoming", "queue:goapp_default", "queue:rubyapp_default", "queue:nobody_listens", "retry", "dead", "schedule"} {
		if n := db.Client.Exists(ctx, q).Val(); n != 0 {
			t.Errorf("%s is not empty at the end", q)
		}
	}
}
