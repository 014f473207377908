package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

type signup struct {
	UserID int64   `json:"user_id"`
	Plan   string  `json:"plan"`
	Price  float64 `json:"price"`
}

func TestPublishAttributes(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	client := sidekiq.NewClient(rdb, nil)

	// A struct keeps its field order; options add queue-bus's optional attributes.
	id, err := bus.Publish(ctx, client, "user_created", signup{UserID: 7, Plan: "pro", Price: 9.5},
		bus.Hostname("h1"), bus.Locale("fr"), bus.Timezone("Europe/Paris"), bus.WithBusContext(map[string]any{"request": "r1"}))
	if err != nil {
		t.Fatal(err)
	}
	job := queueJobs(t, rdb, bus.IncomingQueue)[0]
	want := "bus_published_at,bus_event_type,bus_id,bus_app_hostname,bus_context,bus_locale,bus_timezone,user_id,plan,price,bus_class_proxy"
	if got := strings.Join(keysOf(t, job), ","); got != want {
		t.Errorf("keys %s\nwant %s", got, want)
	}
	ev := eventOf(t, job)
	if ev["bus_id"] != id || ev["bus_app_hostname"] != "h1" || ev["bus_locale"] != "fr" || ev["bus_timezone"] != "Europe/Paris" ||
		ev["bus_context"].(map[string]any)["request"] != "r1" || ev["price"].(interface{ String() string }).String() != "9.5" {
		t.Errorf("event %v", ev)
	}

	// The publisher's own bus_* attributes win, as in queue-bus (a republished event keeps
	// its bus_id), except bus_class_proxy.
	rdb.Del(ctx, "queue:"+bus.IncomingQueue)
	id, err = bus.Publish(ctx, client, "x", map[string]any{"bus_id": "given", "bus_class_proxy": "Evil"})
	if err != nil || id != "given" {
		t.Fatalf("Publish returned %q, %v; want the given bus_id", id, err)
	}
	if ev := eventOf(t, queueJobs(t, rdb, bus.IncomingQueue)[0]); ev["bus_class_proxy"] != "QueueBus::Driver" {
		t.Errorf("bus_class_proxy %v", ev["bus_class_proxy"])
	}

	// Attributes must be a JSON object.
	for _, bad := range []any{[]int{1}, "x", 5} {
		if _, err := bus.Publish(ctx, client, "x", bad); err == nil {
			t.Errorf("Publish accepted %T attributes", bad)
		}
	}
	if _, err := bus.Publish(ctx, client, "", nil); err == nil {
		t.Error("Publish accepted an empty event type")
	}
}

func TestPublishAt(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	client := sidekiq.NewClient(rdb, nil)
	at := time.Now().Add(time.Hour)

	id, err := bus.PublishAt(ctx, client, at, "reminder", map[string]any{"user_id": 7})
	if err != nil {
		t.Fatal(err)
	}
	z := rdb.ZRangeWithScores(ctx, "schedule", 0, -1).Val()
	if len(z) != 1 || z[0].Score != float64(at.Unix()) {
		t.Fatalf("schedule %v, want one job at %d", z, at.Unix())
	}
	job, _ := sidekiq.ParseJobString(z[0].Member.(string))
	ev := eventOf(t, job)
	if _, ok := ev["bus_published_at"]; ok || ev["bus_id"] != id || num(t, ev["bus_delayed_until"]) != at.Unix() ||
		ev["bus_class_proxy"] != "QueueBus::Publisher" || job.Queue != bus.IncomingQueue || !job.EnqueuedAt.IsZero() {
		t.Errorf("scheduled %s", job.Raw())
	}

	// Given bus_published_at and bus_delayed_until are kept (Ruby's `unless` and `||=`);
	// null ones are not.
	rdb.Del(ctx, "schedule")
	if _, err := bus.PublishAt(ctx, client, at, "reminder", map[string]any{"bus_published_at": 5, "bus_delayed_until": 6}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.PublishAt(ctx, client, at, "reminder", map[string]any{"bus_published_at": nil, "bus_delayed_until": nil, "n": 2}); err != nil {
		t.Fatal(err)
	}
	for _, m := range rdb.ZRange(ctx, "schedule", 0, -1).Val() {
		job, _ := sidekiq.ParseJobString(m)
		ev := eventOf(t, job)
		if _, second := ev["n"]; second {
			if _, ok := ev["bus_published_at"]; ok || num(t, ev["bus_delayed_until"]) != at.Unix() {
				t.Errorf("null attributes: %v", ev)
			}
		} else if num(t, ev["bus_published_at"]) != 5 || num(t, ev["bus_delayed_until"]) != 6 {
			t.Errorf("given attributes: %v", ev)
		}
	}
}
