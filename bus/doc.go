// Package bus is a message bus in queue-bus's Redis format: Go services and Rails apps
// (on queue-bus with sidekiq-bus) publish events to one bus, subscribe to the events they
// care about, and run their subscribers as background jobs, whichever side publishes and
// whichever side fans the events out.
//
// # How the bus works
//
// The bus is three kinds of Sidekiq job, all of class QueueBus::Worker, whose single
// argument is the event: a JSON object of attributes, encoded as a JSON string.
//
//  1. Publish puts the event on the queue bus_incoming, adding bus_published_at,
//     bus_event_type, bus_id and bus_app_hostname to the publisher's attributes.
//  2. A driver (any process working bus_incoming: a Ferry server with Attach, or a Ruby
//     Sidekiq process with sidekiq-bus) reads every application's subscriptions from Redis
//     and enqueues one subscriber job, on the subscription's own queue, for every
//     subscription the event matches. An event nobody subscribes to is dropped.
//  3. A rider (a process working that queue, with the application's code) runs the
//     subscription's handler. A handler that fails fails only its own job, which is
//     retried like any Sidekiq job; the event's other subscribers have jobs of their own.
//
// Each application stores its subscriptions in Redis: its key in the set bus_apps, and a
// hash bus_app:<key> mapping each subscription key to {"queue_name", "key", "class",
// "matcher"}. Subscribing is a deployment step (queue-bus's `rake queuebus:subscribe`,
// App.Register here), not something a running process does per event.
//
// # Publishing
//
//	busID, err := bus.Publish(ctx, client, "user_created", map[string]any{"user_id": 7, "plan": "pro"})
//	busID, err = bus.PublishAt(ctx, client, time.Now().Add(time.Hour), "trial_ending", map[string]any{"user_id": 7})
//
// client is a *sidekiq.Client (its push middleware applies). Attributes may be a map or a
// struct; options set bus_app_hostname, bus_locale, bus_timezone and bus_context. A
// delayed event waits in Sidekiq's schedule set as a QueueBus::Publisher job and is
// published, with the same bus_id, when due.
//
// # Subscribing
//
//	app := bus.NewApp(rdb, "billing", nil)
//	app.Subscribe("user_created", bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error {
//		id, _ := ev.Int("user_id")
//		return createAccount(ctx, id)
//	}))
//	app.SubscribeMatch("pro_signup", bus.Match{"bus_event_type": "user_created", "plan": "pro"}, h, bus.Queue("critical"))
//	err := app.Register(ctx) // replaces the app's subscriptions in Redis
//
// A Match compares attributes the way queue-bus does: every entry must match; a value is
// compared with the attribute's Ruby string form (7 is "7", 7.0 is "7.0", true is "true"),
// then tried as a Ruby regular expression anchored at both ends ("user_.*" matches
// "user_created"), and bus.Regexp makes an unanchored one. The special values Key, Blank,
// Empty, Nil, Value and Present test presence and blankness. Subscribe(t, h) is
// SubscribeMatch(t, Match{"bus_event_type": t}, h). Subscription jobs go to the queue
// "<app key>_default", or "<app key>_<name>" with Queue(name).
//
// # Running the bus on a Ferry server
//
//	srv := sidekiq.NewServer(rdb, &sidekiq.Config{
//		Queues: append([]string{bus.IncomingQueue}, app.Queues()...),
//	})
//	b, err := bus.Attach(srv, app) // drive bus_incoming and run app's subscribers
//
// Attach registers the QueueBus::Worker handler. The server drives the bus (it works
// bus_incoming), publishes delayed events when due, and runs the subscribers of the apps
// it is given. The server's Config.Queues must hold bus_incoming and every queue of the
// apps: Attach returns a *QueuesError (ErrQueuesMissing) naming the missing ones rather
// than let events wait forever. With AttachWith and Config.RideOnly the server runs its
// subscribers and leaves driving to other processes; with Config.Heartbeat it also
// publishes queue-bus's heartbeat_minutes event every minute. Bus.Stats counts what the
// server did: events driven, subscriber jobs delivered, events dropped because nobody
// subscribes, and so on.
//
// # Subscribers
//
// A subscriber is a Handler; HandlerFunc adapts a function. The Event carries the
// attributes with typed getters (String, Int, Float, Bool, Time, Decode, Bind), the
// event's Type, ID and PublishedAt, and the subscription it was delivered for. Inputs
// decodes the attributes into a struct with the rules of middleware.Inputs (defaults,
// validation, a bad event straight to the dead set).
//
// Subscribers take run middleware like any job: App.Use for all of an app's subscriptions,
// WithMiddleware for one. The middleware sees Event.Job(): the subscriber's job, with Class
// set to the subscription's class name (Class; default "<app key>:<subscription key>") and
// the attributes as args[0], the one JSON object middleware.Inputs and the locks package
// read. So a worker lock on an input serializes a subscriber per account, and
// middleware.Logging logs each run under the subscription's name:
//
//	app.Use(middleware.Logging(logger))
//	app.Subscribe("account_changed", bus.Inputs(syncAccount),
//		bus.WithMiddleware(locks.WorkerLock(rdb, locks.Inputs("account_id"))))
//
// A handler's error fails the job (retried, 25 times by default, then the dead set);
// sidekiq.Discard and sidekiq.RetryIn work as for any handler.
//
// # With Ruby
//
// A Rails app with sidekiq-bus (1.1.0 for Sidekiq 6.x, 3.0.0 for 7.3 and later) and a Go
// app with this package share the bus through one Redis database: both publish, both
// subscribe, and any mix of Ruby and Go processes may drive. A Ruby process must not work
// a Go app's queues, nor a Go server a Ruby app's. sidekiq-bus 3.x needs its own Redis
// connection (SidekiqBus.redis_handler) on the same database. sidekiq-bus schedules its
// heartbeat with sidekiq-scheduler; a Ferry server with Config.Heartbeat takes part in the
// same lock, so a minute is published once whoever runs it, and runs the heartbeat job a
// Ruby schedule enqueues.
//
// # Delivery
//
// A Ferry driver takes an event with Ferry's reliable fetch and acknowledges it only after
// every subscriber job is pushed; if the process dies in between, another server recovers
// the event and drives it again. Every subscriber gets every event at least once, and
// twice when a driver died at the wrong moment: make subscribers idempotent (the
// middleware package has tools for that). Ruby Sidekiq's own fetch (BRPOP) loses the jobs
// a Ruby process is running when it is killed, events included.
//
// # Untrusted events
//
// Anyone who can publish chooses an event's attributes, so no attribute picks a Redis key:
// queue and application names come from the subscriptions in Redis, normalized as
// queue-bus normalizes them (word characters only; see Normalize). queue-bus lets an
// event's own bus_rider_app_key and bus_rider_sub_key override the driver's, which lets a
// publisher make a Ruby driver address a subscriber job to any subscription of an app that
// matched; a Ferry driver writes the matching subscription's values instead, and a Ferry
// rider runs a job only if it sits in the queue of the subscription it names and its event
// matches that subscription's Match (ignoring the attributes a driver adds). Other jobs
// are rejected to the dead set (RejectedError). Log fields taken from events are cut to
// internal/logcap's bound.
//
// # Differences from queue-bus
//
//   - Go evaluates Ruby patterns with RE2, after translating Ruby's syntax (line anchors,
//     the m flag, \h, \Z, \s, {,n}, nested classes, named groups). Lookaround, atomic
//     groups, back references, the x flag and a few escapes cannot be expressed: such a
//     filter matches only by equality on a Go driver, and the driver logs a warning. In
//     Ruby ^ never matches at the very end of a value that ends with a newline; in Go it
//     does.
//   - Arrays and objects compare by Ruby's inspect form ("[1, \"a\"]", "{\"a\"=>1}"),
//     reproduced for Ruby 3.1; which non-ASCII characters Ruby escapes there is
//     approximated.
//   - An application key queue-bus cannot use (only punctuation, invalid UTF-8) is skipped
//     with a warning; Ruby's driver raises and stops driving until it is removed. A
//     duplicate subscription key in a hash keeps the entry with the lowest hash field.
//   - A subscriber job naming a subscription its app no longer has is dropped (counted in
//     Stats.Unrouted); one naming an app the server does not run fails with a
//     NotSubscribedError and is retried, where Ruby drops it silently.
//   - Start hooks (sidekiq.OnHandlerStart) registered by subscription middleware do not
//     run: the server runs them before the QueueBus::Worker handler.
//   - The incoming queue is always bus_incoming.
package bus
