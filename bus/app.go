package bus

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// AppConfig configures an App. A nil *AppConfig means every default.
type AppConfig struct {
	// Namespace prefixes the bus keys ("<Namespace>:bus_apps"), as the sidekiq package's
	// Namespace prefixes Sidekiq's. It must match the Namespace of the servers that drive
	// the bus. Default: none.
	Namespace string
}

// App is an application subscribed to the bus: a named set of subscriptions, stored in
// Redis as queue-bus stores a Ruby application's (the set bus_apps and the hash
// bus_app:<key>), so drivers in Ruby or Go fan matching events out to its queues. Declare
// its subscriptions, Register them, and Attach the App to a Ferry server that works its
// queues to run them.
//
// An App is safe for concurrent use. Subscribe and Use panic once the App is attached.
type App struct {
	rdb  redis.UniversalClient
	key  string
	keys keyspace

	mu       sync.Mutex
	subs     []*subscription
	byKey    map[string]*subscription
	mws      []sidekiq.RunMiddleware
	attached bool
}

// subscription is one declared subscription.
type subscription struct {
	key     string
	queue   string // normalized, with the application prefix
	class   string // Job().Class for its middleware
	filters map[string]string
	matcher *matcher
	handler Handler
	mws     []sidekiq.RunMiddleware
}

// NewApp returns the application appKey. The key is normalized as queue-bus does
// (Normalize: "Billing-API" becomes "billing_api"); a key with nothing but underscores
// and punctuation panics, as it does in Ruby. A nil cfg means every default.
func NewApp(rdb redis.UniversalClient, appKey string, cfg *AppConfig) *App {
	key := Normalize(appKey)
	if !validAppKey(key) {
		panic(fmt.Sprintf("bus: invalid application key %q", appKey))
	}
	var c AppConfig
	if cfg != nil {
		c = *cfg
	}
	return &App{rdb: rdb, key: key, keys: newKeyspace(c.Namespace), byKey: map[string]*subscription{}}
}

// Key returns the application's normalized key.
func (a *App) Key() string { return a.key }

// SubscribeOption changes one subscription. The set is closed: only this package makes
// options.
type SubscribeOption interface{ applySubscribe(*subscription) }

type subscribeOptionFunc func(*subscription)

func (f subscribeOptionFunc) applySubscribe(s *subscription) { f(s) }

// Queue puts the subscription's jobs on the queue "<app key>_<name>" (normalized), as
// queue-bus's dispatch DSL does for `name "event" do ... end`. Default: "<app key>_default".
func Queue(name string) SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.queue = name })
}

// Class names the subscription's jobs for its middleware: Event.Job().Class, which
// middleware.Logging logs, locks.Classes selects and a worker lock uses as its default
// namespace. Default: "<app key>:<subscription key>".
func Class(name string) SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.class = name })
}

// WithMiddleware runs the subscription's handler inside mws (outermost first), after the
// App's middleware (Use) and the server's. They see Event.Job(): middleware.Logging,
// locks.WorkerLock and the like work as on any job.
func WithMiddleware(mws ...sidekiq.RunMiddleware) SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.mws = append(s.mws, mws...) })
}

// Subscribe subscribes h to events of type eventType: queue-bus's
// `subscribe "event_type" do ... end`. The subscription key is eventType and the match is
// {"bus_event_type": eventType}, a pattern anchored at both ends (see Match). It panics on
// a duplicate key or once the App is attached.
func (a *App) Subscribe(eventType string, h Handler, opts ...SubscribeOption) {
	a.SubscribeMatch(eventType, Match{attrEventType: eventType}, h, opts...)
}

// SubscribeMatch subscribes h, under subKey, to the events that match m (see Match). It
// panics on an empty key or Match, a nil handler, a duplicate key, or once the App is
// attached.
func (a *App) SubscribeMatch(subKey string, m Match, h Handler, opts ...SubscribeOption) {
	if subKey == "" || h == nil {
		panic("bus: SubscribeMatch needs a subscription key and a handler")
	}
	if len(m) == 0 {
		panic(fmt.Sprintf("bus: subscription %q has an empty Match, which matches nothing", subKey))
	}
	s := &subscription{key: subKey, queue: defaultQueueLabel, handler: h, filters: make(map[string]string, len(m))}
	for k, v := range m {
		s.filters[k] = v
	}
	for _, o := range opts {
		if o != nil {
			o.applySubscribe(s)
		}
	}
	s.queue = Normalize(a.key + "_" + s.queue)
	if s.class == "" {
		s.class = a.key + ":" + subKey
	}
	s.matcher = compileMatch(s.filters)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.attached {
		panic("bus: Subscribe after Attach")
	}
	if _, dup := a.byKey[subKey]; dup {
		panic(fmt.Sprintf("bus: app %s already has a subscription %q", a.key, subKey))
	}
	a.byKey[subKey] = s
	a.subs = append(a.subs, s)
}

// Use adds run middleware around every subscription of the App, inside the server's
// middleware and outside each subscription's own (WithMiddleware). It panics once the App
// is attached.
func (a *App) Use(mws ...sidekiq.RunMiddleware) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.attached {
		panic("bus: Use after Attach")
	}
	a.mws = append(a.mws, mws...)
}

// Queues returns the queues the App's subscriptions use, sorted, for the server's
// Config.Queues.
func (a *App) Queues() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, s := range a.subs {
		if !seen[s.queue] {
			seen[s.queue] = true
			out = append(out, s.queue)
		}
	}
	sort.Strings(out)
	return out
}

// Register writes the App's subscriptions to Redis, replacing the ones it had, in one
// MULTI/EXEC (queue-bus's `rake queuebus:subscribe`): the hash bus_app:<key> maps each
// subscription key to {"queue_name", "key", "class", "matcher"}, and the key joins the set
// bus_apps. An App without subscriptions is unregistered instead. Drivers see the change
// with the next event they drive.
func (a *App) Register(ctx context.Context) error {
	a.mu.Lock()
	fields := make([]any, 0, 2*len(a.subs))
	for _, s := range a.subs {
		fields = append(fields, s.key, string(s.redisValue()))
	}
	a.mu.Unlock()
	if len(fields) == 0 {
		return a.Unregister(ctx)
	}
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, a.keys.app(a.key))
		p.HSet(ctx, a.keys.app(a.key), fields...)
		p.SAdd(ctx, a.keys.apps(), a.key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("bus: registering app %s: %w", a.key, err)
	}
	return nil
}

// Unregister removes the App's subscriptions from Redis (queue-bus's
// `rake queuebus:unsubscribe`): drivers stop sending it events. Jobs already on its
// queues stay there.
func (a *App) Unregister(ctx context.Context) error {
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, a.keys.apps(), a.key)
		p.Del(ctx, a.keys.app(a.key))
		return nil
	})
	if err != nil {
		return fmt.Errorf("bus: unregistering app %s: %w", a.key, err)
	}
	return nil
}

// redisValue is the subscription as queue-bus's Subscription#to_redis encodes it.
func (s *subscription) redisValue() []byte {
	buf := make([]byte, 0, 128)
	buf = append(buf, `{"queue_name":`...)
	buf = jsonwire.AppendString(buf, s.queue)
	buf = append(buf, `,"key":`...)
	buf = jsonwire.AppendString(buf, s.key)
	buf = append(buf, `,"class":`...)
	buf = jsonwire.AppendString(buf, RiderClass)
	buf = append(buf, `,"matcher":{`...)
	keys := make([]string, 0, len(s.filters))
	for k := range s.filters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = jsonwire.AppendString(buf, k)
		buf = append(buf, ':')
		buf = jsonwire.AppendString(buf, s.filters[k])
	}
	return append(buf, "}}"...)
}

// seal marks the App attached and returns a snapshot of its subscriptions.
func (a *App) seal() ([]*subscription, []sidekiq.RunMiddleware) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attached = true
	return append([]*subscription(nil), a.subs...), append([]sidekiq.RunMiddleware(nil), a.mws...)
}
