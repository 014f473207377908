// Command bus shows the message bus: two Go applications subscribe to events, a Ferry
// server drives the bus (fans each event out to the matching subscriptions) and runs the
// subscribers, and events are published now and for later, in the Redis format of
// queue-bus, so a Rails app with sidekiq-bus could publish, subscribe or drive beside it.
//
// With no REDIS_URL it uses an embedded Redis, so it needs nothing installed:
//
//	go run ./examples/bus
//
// With REDIS_URL set it uses that Redis (use an empty database):
//
//	REDIS_URL=redis://127.0.0.1:6379/5 go run ./examples/bus
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bus example:", err)
		os.Exit(1)
	}
}

// MailInputs are the attributes the mailer reads, with a default for events that lack one.
type MailInputs struct {
	UserID int64  `json:"user_id"`
	Locale string `json:"locale" default:"en"`
}

func run(ctx context.Context, w io.Writer) error {
	rdb, where, cleanup, err := connect()
	if err != nil {
		return err
	}
	defer cleanup()
	out := &lockedWriter{w: w}
	fmt.Fprintln(out, "Redis:", where)

	// 1. Two applications and their subscriptions. Each subscriber runs as a job of its
	// own on its application's queue.
	var wg sync.WaitGroup
	wg.Add(7) // the subscriber runs this example expects
	billing := bus.NewApp(rdb, "billing", nil)
	billing.Subscribe("user_created", bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error {
		id, _ := ev.Int("user_id")
		plan, _ := ev.String("plan")
		fmt.Fprintf(out, "billing:  open an account for user %d on the %s plan (event %s)\n", id, plan, ev.ID())
		wg.Done()
		return nil
	}))
	billing.SubscribeMatch("pro_signup", bus.Match{"bus_event_type": "user_created", "plan": "pro"},
		bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error {
			id, _ := ev.Int("user_id")
			fmt.Fprintf(out, "billing:  send the pro welcome kit to user %d (queue %s)\n", id, ev.Job().Queue)
			wg.Done()
			return nil
		}), bus.Queue("critical"))
	billing.Subscribe("trial_ending", bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error {
		id, _ := ev.Int("user_id")
		due, _ := ev.Int("bus_delayed_until")
		fmt.Fprintf(out, "billing:  trial of user %d ends (published for %d, at %d)\n", id, due, ev.PublishedAt().Unix())
		wg.Done()
		return nil
	}))
	mailer := bus.NewApp(rdb, "mailer", nil)
	mailer.Subscribe("user_.*", bus.Inputs(func(ctx context.Context, ev *bus.Event, in MailInputs) error {
		fmt.Fprintf(out, "mailer:   %s mail to user %d in %q\n", ev.Type(), in.UserID, in.Locale)
		wg.Done()
		return nil
	}))
	for _, app := range []*bus.App{billing, mailer} {
		if err := app.Register(ctx); err != nil {
			return err
		}
	}

	// 2. What a Ruby driver (sidekiq-bus) reads to fan events out, Go's and its own.
	fmt.Fprintln(out, "\nSubscriptions in Redis:")
	apps, err := rdb.SMembers(ctx, "bus_apps").Result()
	if err != nil {
		return err
	}
	sort.Strings(apps)
	for _, a := range apps {
		subs, err := rdb.HGetAll(ctx, "bus_app:"+a).Result()
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(subs))
		for k := range subs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(out, "  bus_app:%-8s %-13s %s\n", a, k, subs[k])
		}
	}

	// 3. A server that drives the bus and runs both applications' subscribers. Its
	// queues must include bus_incoming and the applications' queues.
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{
		Concurrency:  5,
		Queues:       append(append([]string{bus.IncomingQueue}, billing.Queues()...), mailer.Queues()...),
		PollInterval: 200 * time.Millisecond, // delayed events are due within a second
	})
	b, err := bus.Attach(srv, billing, mailer)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}

	// 4. Publish, as any service would (a Rails app does the same with QueueBus.publish).
	client := sidekiq.NewClient(rdb, nil)
	fmt.Fprintln(out, "\nPublishing:")
	for _, p := range []struct {
		event string
		attrs map[string]any
	}{
		{"user_created", map[string]any{"user_id": 7, "plan": "pro", "locale": "fr"}},
		{"user_created", map[string]any{"user_id": 8, "plan": "free"}},
		{"user_deleted", map[string]any{"user_id": 9}},
		{"nobody_listens", map[string]any{"user_id": 7}},
	} {
		id, err := bus.Publish(ctx, client, p.event, p.attrs)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-15s %v  bus_id %s\n", p.event, p.attrs, id)
	}
	id, err := bus.PublishAt(ctx, client, time.Now().Add(time.Second), "trial_ending", map[string]any{"user_id": 7})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %-15s %v  bus_id %s, in 1s\n\n", "trial_ending", map[string]any{"user_id": 7}, id)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return errors.New("timed out waiting for the subscribers")
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Stop(stopCtx); err != nil {
		return err
	}
	st := b.Stats()
	fmt.Fprintf(out, "\nstopped. events driven %d, subscriber jobs %d, dropped (nobody subscribes) %d, delayed published %d\n",
		st.Driven, st.Delivered, st.Dropped, st.Published)
	return nil
}

// connect uses REDIS_URL, or starts an embedded Redis when it is unset.
func connect() (redis.UniversalClient, string, func(), error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, "", nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb := redis.NewClient(opts)
		return rdb, url, func() { rdb.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, "", nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, "embedded (set REDIS_URL to use a real Redis)", func() { rdb.Close(); mr.Close() }, nil
}

// lockedWriter serialises writes from concurrent subscribers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
