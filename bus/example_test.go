package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
)

// embedded returns a client for an in-process Redis, for the examples.
func embedded() (*redis.Client, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { rdb.Close(); mr.Close() }
}

// Publish enqueues the event for a driver, as QueueBus.publish does: a QueueBus::Worker
// job on bus_incoming whose argument is the event, encoded as a JSON string.
func ExamplePublish() {
	rdb, done := embedded()
	defer done()
	ctx := context.Background()
	client := sidekiq.NewClient(rdb, nil)

	if _, err := bus.Publish(ctx, client, "user_created", map[string]any{"user_id": 7, "plan": "pro"}); err != nil {
		panic(err)
	}
	raw := rdb.LRange(ctx, "queue:bus_incoming", 0, -1).Val()[0]
	job, _ := sidekiq.ParseJobString(raw)
	var args []string
	_ = json.Unmarshal(job.Args, &args)
	var event map[string]any
	_ = json.Unmarshal([]byte(args[0]), &event)
	fmt.Println(job.Class, "on", job.Queue, "retry", job.Retry)
	fmt.Println(event["bus_event_type"], event["user_id"], event["plan"], event["bus_class_proxy"])
	// Output:
	// QueueBus::Worker on bus_incoming retry true
	// user_created 7 pro QueueBus::Driver
}

// Register stores an application's subscriptions where every driver, Ruby or Go, reads
// them.
func ExampleApp_Register() {
	rdb, done := embedded()
	defer done()
	ctx := context.Background()
	h := bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error { return nil })

	app := bus.NewApp(rdb, "Billing", nil)
	app.Subscribe("user_created", h)
	app.SubscribeMatch("pro_signup", bus.Match{"bus_event_type": "user_created", "plan": "pro"}, h, bus.Queue("critical"))
	if err := app.Register(ctx); err != nil {
		panic(err)
	}
	fmt.Println(rdb.SMembers(ctx, "bus_apps").Val(), app.Queues())
	fmt.Println(rdb.HGet(ctx, "bus_app:billing", "pro_signup").Val())
	// Output:
	// [billing] [billing_critical billing_default]
	// {"queue_name":"billing_critical","key":"pro_signup","class":"::QueueBus::Rider","matcher":{"bus_event_type":"user_created","plan":"pro"}}
}

// Attach makes a server drive the bus and run an application's subscribers.
func ExampleAttach() {
	rdb, done := embedded()
	defer done()
	ctx := context.Background()

	got := make(chan string, 1)
	app := bus.NewApp(rdb, "billing", nil)
	app.Subscribe("user_created", bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error {
		id, _ := ev.Int("user_id")
		got <- fmt.Sprintf("%s got %s for user %d", ev.AppKey(), ev.Type(), id)
		return nil
	}))
	if err := app.Register(ctx); err != nil {
		panic(err)
	}
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: append([]string{bus.IncomingQueue}, app.Queues()...)})
	b, err := bus.Attach(srv, app)
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	client := sidekiq.NewClient(rdb, nil)
	_, _ = bus.Publish(ctx, client, "user_created", map[string]any{"user_id": 7})
	_, _ = bus.Publish(ctx, client, "nobody_listens", nil)
	fmt.Println(<-got)
	for b.Stats().Driven < 2 {
		time.Sleep(time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = srv.Stop(stopCtx)
	st := b.Stats()
	fmt.Println("driven", st.Driven, "delivered", st.Delivered, "dropped", st.Dropped)
	// Output:
	// billing got user_created for user 7
	// driven 2 delivered 1 dropped 1
}

// A server whose queues lack the bus's is refused, rather than left never to run them.
func ExampleQueuesError() {
	rdb, done := embedded()
	defer done()
	app := bus.NewApp(rdb, "billing", nil)
	app.Subscribe("user_created", bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error { return nil }))
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: []string{"default"}})
	_, err := bus.Attach(srv, app)
	fmt.Println(err)
	// Output:
	// bus: the server's Config.Queues lacks bus_incoming, billing_default; add them (or set Config.RideOnly if other processes drive the bus)
}

func ExampleNormalize() {
	fmt.Println(bus.Normalize("Billing-API v2"), bus.Normalize("../queue:x"))
	// Output:
	// billing_api_v2 ___queue_x
}

func ExampleRegexp() {
	// Plain values are anchored patterns; Regexp makes an unanchored one, as a Ruby Regexp
	// object stored by queue-bus.
	m := bus.Match{"bus_event_type": "user_.*", "plan": bus.Regexp("pro")}
	fmt.Println(m["plan"])
	// Output:
	// (?-mix:pro)
}
