package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// An event's attributes come from any publisher. These tests publish hostile ones.

// victimApp is a Go app with a harmless subscription and a dangerous one, in two queues.
func victimApp(t *testing.T, db *testsuite.RealRedisDB, rec *recorder) *bus.App {
	t.Helper()
	app := bus.NewApp(db.Client, "goapp", nil)
	app.Subscribe("harmless", rec.handler())
	app.Subscribe("account_deleted", rec.handler(), bus.Queue("other"))
	app.SubscribeMatch("delete_account", bus.Match{"bus_event_type": "account_deleted"}, rec.handler())
	if err := app.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

// TestPublisherCannotChooseTheSubscription: bus_rider_* attributes in a published event
// decide nothing. A Go driver writes the matching subscription's values over them; a
// subscriber job that a Ruby driver built with them (queue-bus lets the event win) is
// rejected by the Go rider instead of running the subscription it names.
func TestPublisherCannotChooseTheSubscription(t *testing.T) {
	t.Parallel()
	for _, v := range rubyBuses {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			requireRubyBus(t, v)
			db := realRedis(t)
			ctx := context.Background()
			rec := newRecorder()
			app := victimApp(t, db, rec)
			forged := map[string]any{
				"bus_rider_app_key": "goapp", "bus_rider_sub_key": "delete_account", "bus_rider_queue": "goapp_default",
				"bus_rider_class_name": "Evil", "bus_driven_at": 1, "user_id": 1,
			}

			// Ruby drives a forged event published from Go, without a server: the job it
			// enqueues for goapp/harmless names goapp/delete_account.
			client := sidekiq.NewClient(db.Client, nil)
			if _, err := bus.Publish(ctx, client, "harmless", forged); err != nil {
				t.Fatal(err)
			}
			runRuby(t, v, db.URL, `
while (raw = QueueBus.redis { |r| r.lpop("queue:bus_incoming") })
  QueueBus::Worker.perform(JSON.parse(raw)["args"][0])
end
`)
			jobs := queueJobs(t, db.Client, "goapp_default")
			if len(jobs) != 1 || eventOf(t, jobs[0])["bus_rider_sub_key"] != "delete_account" {
				t.Fatalf("Ruby's driver did not let the event choose the subscription (%d jobs); the test proves nothing", len(jobs))
			}

			// Go drives the same event.
			if _, err := bus.Publish(ctx, client, "harmless", forged); err != nil {
				t.Fatal(err)
			}
			srv := sidekiq.NewServer(db.Client, serverConfig(append([]string{bus.IncomingQueue}, app.Queues()...)...))
			b, err := bus.Attach(srv, app)
			if err != nil {
				t.Fatal(err)
			}
			stop := startServer(t, srv)
			rec.waitFor(t, 30*time.Second, "the Go-driven forged event to reach goapp/harmless and the Ruby-driven one to be rejected", func() bool {
				return rec.count("goapp/harmless") == 1 && b.Stats().Rejected == 1
			})
			stop()

			if n := rec.count("goapp/delete_account"); n != 0 {
				t.Fatalf("a published event ran goapp/delete_account %d times", n)
			}
			ev := rec.events("goapp/harmless")[0]
			for k, want := range map[string]string{"bus_rider_app_key": "goapp", "bus_rider_sub_key": "harmless",
				"bus_rider_queue": "goapp_default", "bus_rider_class_name": "::QueueBus::Rider"} {
				if got, _ := ev.String(k); got != want {
					t.Errorf("Go-driven event: %s = %q, want %q", k, got, want)
				}
			}
			dead := db.Client.ZRange(ctx, "dead", 0, -1).Val()
			if len(dead) != 1 {
				t.Fatalf("%d jobs in the dead set, want the rejected one", len(dead))
			}
			job, err := sidekiq.ParseJobString(dead[0])
			if err != nil {
				t.Fatal(err)
			}
			if job.ErrorClass != "Ferry::Bus::Rejected" || !strings.Contains(job.ErrorMessage, "does not match the subscription") {
				t.Errorf("dead job: %s: %s", job.ErrorClass, job.ErrorMessage)
			}
		})
	}
}

// pushRider enqueues a subscriber job as a driver would, with the given event.
func pushRider(t *testing.T, client *sidekiq.Client, queue string, event string) {
	t.Helper()
	args, err := sidekiq.EncodeArgs([]any{event})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PushJob(context.Background(), &sidekiq.Job{Class: bus.WorkerClass, Queue: queue, Args: args}); err != nil {
		t.Fatal(err)
	}
}

// TestRiderChecks: subscriber jobs that do not belong where they are are not run: the
// wrong queue (rejected, dead set), a subscription the app no longer has (dropped), an app
// this server does not run (retried, for a process that does), and jobs that carry no
// event (dead set). The server keeps working through all of them.
func TestRiderChecks(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	ctx := context.Background()
	rec := newRecorder()
	app := victimApp(t, db, rec)
	srv := sidekiq.NewServer(db.Client, serverConfig(append([]string{bus.IncomingQueue}, app.Queues()...)...))
	b, err := bus.Attach(srv, app)
	if err != nil {
		t.Fatal(err)
	}
	obs := &outcomes{}
	srv.Observe(obs)
	client := sidekiq.NewClient(db.Client, nil)
	rider := func(sub, eventType string) string {
		return fmt.Sprintf(`{"bus_driven_at":1,"bus_rider_queue":"x","bus_rider_app_key":%q,"bus_rider_sub_key":%q,"bus_rider_class_name":"::QueueBus::Rider","bus_event_type":%q,"bus_id":"1-x","bus_class_proxy":"::QueueBus::Rider"}`,
			"goapp", sub, eventType)
	}
	// In the queue of goapp/account_deleted, a job for goapp/delete_account (same event type).
	pushRider(t, client, "goapp_other", rider("delete_account", "account_deleted"))
	// A subscription goapp never had.
	pushRider(t, client, "goapp_default", rider("gone", "harmless"))
	// An app this server does not run.
	pushRider(t, client, "goapp_default", strings.Replace(rider("harmless", "harmless"), `"goapp"`, `"otherapp"`, 1))
	// No event at all.
	for _, args := range []string{`[]`, `["not json"]`, `[5]`, `["{\"bus_class_proxy\":\"Nope\"}"]`} {
		if _, err := client.PushJob(ctx, &sidekiq.Job{Class: bus.WorkerClass, Queue: "goapp_default", Args: []byte(args)}); err != nil {
			t.Fatal(err)
		}
	}
	// And one good job after all that.
	pushRider(t, client, "goapp_default", rider("harmless", "harmless"))

	stop := startServer(t, srv)
	rec.waitFor(t, 30*time.Second, "the checks", func() bool {
		st := b.Stats()
		return rec.count("goapp/harmless") == 1 && st.Rejected == 1 && st.Unrouted == 1 && st.Invalid == 4 && obs.retried.Load() >= 1
	})
	stop()
	if n := rec.count("goapp/delete_account") + rec.count("goapp/account_deleted"); n != 0 {
		t.Errorf("%d runs of subscriptions no job was for", n)
	}
	if dead := db.Client.ZCard(ctx, "dead").Val(); dead != 5 {
		t.Errorf("%d jobs in the dead set, want 5 (1 rejected, 4 without an event)", dead)
	}
	retry := db.Client.ZRange(ctx, "retry", 0, -1).Val()
	if len(retry) == 0 {
		t.Fatal("the job of another app is not in the retry set")
	}
	job, _ := sidekiq.ParseJobString(retry[0])
	if !strings.Contains(job.ErrorMessage, `no app "otherapp"`) {
		t.Errorf("retry error: %s", job.ErrorMessage)
	}
	var nse *bus.NotSubscribedError
	if !errors.As(&bus.NotSubscribedError{AppKey: "a"}, &nse) {
		t.Fatal("NotSubscribedError is not an error type")
	}
}

// TestSubscriptionsCannotLeaveTheKeyspace: application and queue names read from Redis
// are normalized as queue-bus normalizes them, so whatever an app registered, a driver
// writes only "queue:<word characters>" and reads only "bus_app:<word characters>".
func TestSubscriptionsCannotLeaveTheKeyspace(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	ctx := context.Background()
	// An app registered by hand with hostile names.
	db.Client.SAdd(ctx, "bus_apps", "evil:app", "../x")
	db.Client.HSet(ctx, "bus_app:evil_app", "s", `{"queue_name":"../retry:x y","key":"s","class":"::QueueBus::Rider","matcher":{"bus_event_type":"ping"}}`)
	db.Client.HSet(ctx, "evil:app", "s", `{"queue_name":"never","key":"s","class":"C","matcher":{"bus_event_type":"ping"}}`)
	srv := sidekiq.NewServer(db.Client, serverConfig(bus.IncomingQueue))
	b, err := bus.Attach(srv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(ctx, sidekiq.NewClient(db.Client, nil), "ping", nil); err != nil {
		t.Fatal(err)
	}
	stop := startServer(t, srv)
	testutil.Eventually(t, 30*time.Second, "the event to be driven", func() bool { return b.Stats().Driven == 1 })
	stop()
	if got := b.Stats().Delivered; got != 1 {
		t.Fatalf("delivered %d jobs, want 1", got)
	}
	jobs := queueJobs(t, db.Client, "___retry_x_y")
	if len(jobs) != 1 || eventOf(t, jobs[0])["bus_rider_app_key"] != "evil_app" {
		t.Fatalf("the subscriber job is not on queue:___retry_x_y (found %d)", len(jobs))
	}
	for _, k := range db.Client.Keys(ctx, "*").Val() {
		if strings.HasPrefix(k, "queue:") && strings.Trim(strings.TrimPrefix(k, "queue:"), "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("driver wrote %q", k)
		}
	}
}

// TestLogsAreCapped: payload-derived log fields are cut to logcap's bound, however large
// the event.
func TestLogsAreCapped(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	ctx := context.Background()
	core, logs := observer.New(zapcore.DebugLevel)
	app := bus.NewApp(db.Client, "goapp", nil)
	app.Subscribe("x", newRecorder().handler())
	if err := app.Register(ctx); err != nil {
		t.Fatal(err)
	}
	srv := sidekiq.NewServer(db.Client, serverConfig(append([]string{bus.IncomingQueue}, app.Queues()...)...))
	b, err := bus.AttachWith(srv, &bus.Config{Logger: zap.New(core)}, app)
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("é", 100_000)
	client := sidekiq.NewClient(db.Client, nil)
	if _, err := bus.Publish(ctx, client, huge, nil); err != nil { // nobody subscribes: a debug line
		t.Fatal(err)
	}
	pushRider(t, client, "goapp_default", fmt.Sprintf(`{"bus_rider_app_key":"goapp","bus_rider_sub_key":%q}`, huge)) // unrouted: a warning
	stop := startServer(t, srv)
	testutil.Eventually(t, 30*time.Second, "both jobs", func() bool {
		st := b.Stats()
		return st.Dropped == 1 && st.Unrouted == 1
	})
	stop()
	if logs.Len() < 2 {
		t.Fatalf("%d log lines", logs.Len())
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if len(f.String) > logcap.Max+32 {
				t.Errorf("log %q field %s is %d bytes", e.Message, f.Key, len(f.String))
			}
		}
	}
}
