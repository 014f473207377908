package bus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/sidekiq"
)

// Config configures what AttachWith attaches. A nil *Config means every default.
type Config struct {
	// RideOnly makes the server run its apps' subscribers without driving the bus: it does
	// not need bus_incoming in its queues, and other processes (Ruby or Go) fan events
	// out. A bus job that reaches it anyway is still handled. Default: false (drive).
	RideOnly bool
	// Heartbeat publishes queue-bus's heartbeat_minutes event once a minute, as
	// sidekiq-bus's scheduled heartbeat does, under queue-bus's lock
	// (bus:heartbeat:lock) and last-minute record (bus:heartbeat:timestamp), so any number
	// of Go and Ruby processes publish each minute once. Default: false.
	Heartbeat bool
	// HeartbeatBackfill is how many missed minutes a heartbeat publishes after the bus was
	// down (queue-bus publishes every one of them; it caps them at 3 only in development
	// and test). A negative value means no limit. Default: 60.
	HeartbeatBackfill int
	// Location is the time zone of the heartbeat's minute, hour, day, month, year, yday
	// and wday attributes (Ruby uses the process's local time). Default: time.Local.
	Location *time.Location
	// Hostname is bus_app_hostname for events this server publishes (heartbeats, delayed
	// events that come due without one). Default: os.Hostname.
	Hostname string
	// Logger receives the bus's logs. Default: no logging.
	Logger *zap.Logger
	// Clock tells the time for bus_driven_at, bus_executed_at and heartbeats. Default: the
	// wall clock; tests may pass a fake.
	Clock sidekiq.Clock
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.HeartbeatBackfill == 0 {
		out.HeartbeatBackfill = 60
	}
	if out.Location == nil {
		out.Location = time.Local
	}
	if out.Hostname == "" {
		out.Hostname = defaultHostname()
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	if out.Clock == nil {
		out.Clock = clock.Real{}
	}
	return out
}

// ErrQueuesMissing is matched (errors.Is) by the *QueuesError of Attach.
var ErrQueuesMissing = errors.New("bus: server does not work the bus's queues")

// QueuesError says which queues the bus needs that the server's Config.Queues lacks.
// Without them the server would never fetch the bus's jobs.
type QueuesError struct {
	// Missing lists the queues, bus_incoming first when the server drives.
	Missing []string
}

func (e *QueuesError) Error() string {
	return fmt.Sprintf("bus: the server's Config.Queues lacks %s; add them (or set Config.RideOnly if other processes drive the bus)",
		strings.Join(e.Missing, ", "))
}

// Is matches ErrQueuesMissing.
func (e *QueuesError) Is(target error) bool { return target == ErrQueuesMissing }

// Attach makes srv drive the bus and run the apps' subscribers: AttachWith with every
// default. See AttachWith.
func Attach(srv *sidekiq.Server, apps ...*App) (*Bus, error) {
	return AttachWith(srv, nil, apps...)
}

// AttachWith registers the bus's worker class (QueueBus::Worker) with srv, so that srv
//
//   - drives the bus: fans each event on bus_incoming out to the queue of every
//     subscription it matches, in every application registered in Redis, Ruby or Go;
//   - publishes events scheduled with PublishAt (or Ruby's publish_at) when they come due;
//   - rides the bus: runs the subscribers of apps, from their queues;
//   - with cfg.Heartbeat, publishes the heartbeat_minutes events (a sidekiq.Service).
//
// srv's Config.Queues must include bus_incoming (unless cfg.RideOnly) and every queue of
// apps (App.Queues); otherwise AttachWith returns a *QueuesError (ErrQueuesMissing) and
// changes nothing, rather than leaving events to wait forever. It also returns an error
// for two apps with one key, or an app whose Namespace is not the server's. Call it once
// per server, before Start; it panics if a handler for QueueBus::Worker is already
// registered. The apps can no longer be given subscriptions afterwards. Registering
// their subscriptions in Redis (App.Register) is separate.
func AttachWith(srv *sidekiq.Server, cfg *Config, apps ...*App) (*Bus, error) {
	c := cfg.withDefaults()
	keys := newKeyspace(srv.Namespace())
	need := []string{}
	if !c.RideOnly {
		need = append(need, IncomingQueue)
	}
	seen := map[string]bool{}
	for _, a := range apps {
		if a == nil {
			return nil, errors.New("bus: Attach: nil app")
		}
		if seen[a.key] {
			return nil, fmt.Errorf("bus: Attach: two apps with the key %q", a.key)
		}
		seen[a.key] = true
		if a.keys != keys {
			return nil, fmt.Errorf("bus: Attach: app %s has Namespace %q, the server %q", a.key,
				strings.TrimSuffix(a.keys.prefix, ":"), srv.Namespace())
		}
		need = append(need, a.Queues()...)
	}
	have := map[string]bool{}
	for _, q := range srv.Queues() {
		have[q] = true
	}
	var missing []string
	for _, q := range need {
		if !have[q] {
			missing = append(missing, q)
			have[q] = true // listed once
		}
	}
	if len(missing) > 0 {
		return nil, &QueuesError{Missing: missing}
	}

	b := &Bus{
		client: srv.Client(),
		rdb:    srv.Redis(),
		keys:   keys,
		cfg:    c,
		log:    c.Logger,
		apps:   map[string]*attachedApp{},
	}
	b.dir = newDirectory(b.rdb, keys, b.log)
	srv.Handle(WorkerClass, b) // panics on a second Attach, before any app is sealed
	for _, a := range apps {
		subs, mws := a.seal()
		aa := &attachedApp{app: a, subs: map[string]*subscription{}, mws: mws}
		for _, s := range subs {
			aa.subs[s.key] = s
		}
		b.apps[a.key] = aa
	}
	if c.Heartbeat {
		b.beat = &heartbeatService{b: b}
		srv.AddService(b.beat)
	}
	return b, nil
}
