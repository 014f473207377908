package bus_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
)

// TestWireFormatMatchesRuby: what Publish, PublishAt and Register write is what
// QueueBus.publish, QueueBus.publish_at and `rake queuebus:subscribe` write, key for key
// and in the same order, with Sidekiq 6.4.1 + sidekiq-bus 1.1.0 and 7.3.10 + 3.0.0.
func TestWireFormatMatchesRuby(t *testing.T) {
	t.Parallel()
	for _, v := range rubyBuses {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			requireRubyBus(t, v)
			db := realRedis(t)
			ctx := context.Background()
			at := time.Now().Add(time.Hour).Truncate(time.Second)

			runRuby(t, v, db.URL, `
QueueBus.dispatch("same_app") do
  subscribe "user_created" do |a| end
  subscribe "pro_signup", "bus_event_type" => "user_created", "plan" => "pro" do |a| end
  critical "blank_name", "name" => :blank do |a| end
end
QueueBus::TaskManager.new(false).subscribe!
QueueBus.publish("user_created", "user_id" => 7)
QueueBus.publish_at(`+itoa(at.Unix())+`, "reminder", "user_id" => 7)
`)
			rubyHash := db.Client.HGetAll(ctx, "bus_app:same_app").Val()
			rubyApps := db.Client.SMembers(ctx, "bus_apps").Val()
			rubyPub := queueJobs(t, db.Client, bus.IncomingQueue)
			rubySched := scheduled(t, db.Client)
			if len(rubyPub) != 1 || len(rubySched) != 1 {
				t.Fatalf("Ruby published %d and scheduled %d", len(rubyPub), len(rubySched))
			}
			if err := db.Client.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}

			app := bus.NewApp(db.Client, "same_app", nil)
			h := newRecorder().handler()
			app.Subscribe("user_created", h)
			app.SubscribeMatch("pro_signup", bus.Match{"bus_event_type": "user_created", "plan": "pro"}, h)
			app.SubscribeMatch("blank_name", bus.Match{"name": bus.Blank}, h, bus.Queue("critical"))
			if err := app.Register(ctx); err != nil {
				t.Fatal(err)
			}
			client := sidekiq.NewClient(db.Client, nil)
			if _, err := bus.Publish(ctx, client, "user_created", map[string]any{"user_id": 7}, bus.Hostname("ruby-host")); err != nil {
				t.Fatal(err)
			}
			if _, err := bus.PublishAt(ctx, client, at, "reminder", map[string]any{"user_id": 7}, bus.Hostname("ruby-host")); err != nil {
				t.Fatal(err)
			}
			goHash := db.Client.HGetAll(ctx, "bus_app:same_app").Val()
			goApps := db.Client.SMembers(ctx, "bus_apps").Val()
			goPub := queueJobs(t, db.Client, bus.IncomingQueue)
			goSched := scheduled(t, db.Client)

			if !reflect.DeepEqual(goApps, rubyApps) {
				t.Errorf("bus_apps: Go %v, Ruby %v", goApps, rubyApps)
			}
			if !reflect.DeepEqual(goHash, rubyHash) {
				t.Errorf("bus_app:same_app differs\nGo:   %v\nRuby: %v", goHash, rubyHash)
			}
			comparePublished(t, "published", goPub[0], rubyPub[0])
			comparePublished(t, "scheduled", goSched[0].job, rubySched[0].job)
			if goSched[0].score != rubySched[0].score || goSched[0].score != float64(at.Unix()) {
				t.Errorf("schedule score: Go %v, Ruby %v, want %d", goSched[0].score, rubySched[0].score, at.Unix())
			}
			ev := eventOf(t, goSched[0].job)
			if num(t, ev["bus_delayed_until"]) != at.Unix() || ev["bus_class_proxy"] != "QueueBus::Publisher" {
				t.Errorf("scheduled event %v", ev)
			}
		})
	}
}

// comparePublished compares a bus job written by Go with one written by Ruby: the same
// envelope keys and values (but jid and timestamps), the same event keys in the same
// order, the same values (but bus_id and the times).
func comparePublished(t *testing.T, what string, goJob, rubyJob *sidekiq.Job) {
	t.Helper()
	if goJob.Class != rubyJob.Class || goJob.Queue != rubyJob.Queue || goJob.Retry.String() != rubyJob.Retry.String() {
		t.Errorf("%s: Go job %s/%s/%v, Ruby %s/%s/%v", what, goJob.Class, goJob.Queue, goJob.Retry, rubyJob.Class, rubyJob.Queue, rubyJob.Retry)
	}
	if (goJob.EnqueuedAt.IsZero()) != (rubyJob.EnqueuedAt.IsZero()) || len(goJob.Extra) != len(rubyJob.Extra) {
		t.Errorf("%s: envelopes differ\nGo:   %s\nRuby: %s", what, goJob.Raw(), rubyJob.Raw())
	}
	gk, rk := keysOf(t, goJob), keysOf(t, rubyJob)
	if strings.Join(gk, ",") != strings.Join(rk, ",") {
		t.Errorf("%s: event keys\nGo:   %v\nRuby: %v", what, gk, rk)
	}
	ge, re := eventOf(t, goJob), eventOf(t, rubyJob)
	for k, rv := range re {
		switch k {
		case "bus_id":
			gid, _ := ge[k].(string)
			if len(gid) != len(rv.(string)) || gid[10] != '-' {
				t.Errorf("%s: bus_id Go %q, Ruby %q", what, gid, rv)
			}
		case "bus_published_at", "bus_delayed_until":
			if d := num(t, ge[k]) - num(t, rv); d < -60 || d > 60 {
				t.Errorf("%s: %s Go %v, Ruby %v", what, k, ge[k], rv)
			}
		default:
			gj, _ := json.Marshal(ge[k])
			rj, _ := json.Marshal(rv)
			if string(gj) != string(rj) {
				t.Errorf("%s: %s Go %s, Ruby %s", what, k, gj, rj)
			}
		}
	}
}

type scheduledJob struct {
	job   *sidekiq.Job
	score float64
}

func scheduled(t *testing.T, rdb *redis.Client) []scheduledJob {
	t.Helper()
	zs, err := rdb.ZRangeWithScores(context.Background(), "schedule", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]scheduledJob, len(zs))
	for i, z := range zs {
		job, err := sidekiq.ParseJobString(z.Member.(string))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = scheduledJob{job: job, score: z.Score}
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
