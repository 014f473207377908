package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
)

// TestDriveAndRide: a Ferry server drives the bus and runs the subscribers of two apps.
// Every subscription gets each matching event once, with queue-bus's attributes; an event
// nobody subscribes to is dropped and counted.
func TestDriveAndRide(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	ctx := context.Background()
	rec := newRecorder()

	billing := bus.NewApp(db.Client, "Billing", nil)
	billing.Subscribe("user_created", rec.handler())
	billing.SubscribeMatch("pro_signup", bus.Match{"bus_event_type": "user_created", "plan": "pro"}, rec.handler(), bus.Queue("critical"))
	mailer := bus.NewApp(db.Client, "mailer", nil)
	mailer.Subscribe("user_.*", rec.handler())
	for _, app := range []*bus.App{billing, mailer} {
		if err := app.Register(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := billing.Queues(); strings.Join(got, ",") != "billing_critical,billing_default" {
		t.Fatalf("billing queues %v", got)
	}

	queues := append(append([]string{bus.IncomingQueue}, billing.Queues()...), mailer.Queues()...)
	srv := sidekiq.NewServer(db.Client, serverConfig(queues...))
	b, err := bus.Attach(srv, billing, mailer)
	if err != nil {
		t.Fatal(err)
	}
	stop := startServer(t, srv)

	client := sidekiq.NewClient(db.Client, nil)
	before := time.Now().Unix()
	id7, err := bus.Publish(ctx, client, "user_created", map[string]any{"user_id": 7, "plan": "pro"}, bus.Hostname("go-host"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		typ   string
		attrs map[string]any
	}{
		{"user_created", map[string]any{"user_id": 8, "plan": "free"}},
		{"user_deleted", map[string]any{"user_id": 9}},
		{"nobody_listens", map[string]any{"user_id": 10}},
	} {
		if _, err := bus.Publish(ctx, client, p.typ, p.attrs); err != nil {
			t.Fatal(err)
		}
	}

	rec.waitFor(t, 30*time.Second, "every subscriber to get its events", func() bool {
		return rec.count("billing/user_created") >= 2 && rec.count("billing/pro_signup") >= 1 &&
			rec.count("mailer/user_.*") >= 3 && b.Stats().Driven >= 4
	})
	stop()

	want := map[string][]int64{
		"billing/user_created": {7, 8},
		"billing/pro_signup":   {7},
		"mailer/user_.*":       {7, 8, 9},
	}
	for key, ids := range want {
		evs := rec.events(key)
		var got []int64
		for _, ev := range evs {
			n, ok := ev.Int("user_id")
			if !ok {
				t.Fatalf("%s: user_id missing in %s", key, mustJSON(t, ev))
			}
			got = append(got, n)
		}
		if !sameInts(got, ids) {
			t.Errorf("%s got user_ids %v, want %v once each", key, got, ids)
		}
	}
	st := b.Stats()
	if st.Driven != 4 || st.Dropped != 1 || st.Delivered != 6 || st.Ridden != 6 || st.Failed != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v; want 4 driven, 1 dropped, 6 delivered and ridden", st)
	}

	ev := rec.events("billing/pro_signup")[0]
	if ev.Type() != "user_created" || ev.ID() != id7 || !strings.HasPrefix(id7, "1") || len(id7) != len("1700000000-")+36 {
		t.Errorf("event type %q id %q (Publish returned %q)", ev.Type(), ev.ID(), id7)
	}
	if pa := ev.PublishedAt().Unix(); pa < before || pa > time.Now().Unix() {
		t.Errorf("bus_published_at %d not within the test", pa)
	}
	for k, want := range map[string]string{
		"bus_app_hostname": "go-host", "bus_rider_app_key": "billing", "bus_rider_sub_key": "pro_signup",
		"bus_rider_queue": "billing_critical", "bus_rider_class_name": "::QueueBus::Rider",
		"bus_class_proxy": "::QueueBus::Rider", "plan": "pro",
	} {
		if got, _ := ev.String(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"bus_driven_at", "bus_executed_at"} {
		if tm, ok := ev.Time(k); !ok || tm.Unix() < before {
			t.Errorf("%s = %v (%v)", k, tm, ok)
		}
	}
	if got := ev.Job().Class; got != "billing:pro_signup" {
		t.Errorf("the subscriber's job class is %q", got)
	}
	if exists := db.Client.Exists(ctx, "queue:nobody_listens").Val(); exists != 0 {
		t.Error("an event without subscribers created a queue")
	}
}

func sameInts(got, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[int64]int{}
	for _, g := range got {
		seen[g]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			return false
		}
	}
	return true
}

func mustJSON(t *testing.T, ev *bus.Event) string {
	t.Helper()
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
