package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
)

// PublishOption changes one Publish or PublishAt. The set is closed: only this package
// makes options.
type PublishOption interface{ applyPublish(*publishSettings) }

type publishSettings struct {
	hostname string
	locale   string
	timezone string
	busCtx   any
	hasCtx   bool
	now      time.Time // for tests; zero means time.Now
}

type publishOptionFunc func(*publishSettings)

func (f publishOptionFunc) applyPublish(s *publishSettings) { f(s) }

// Hostname sets bus_app_hostname. Default: os.Hostname, as queue-bus's Socket.gethostname.
func Hostname(name string) PublishOption {
	return publishOptionFunc(func(s *publishSettings) { s.hostname = name })
}

// Locale sets bus_locale, which Ruby subscribers apply as I18n.locale while they run.
// Default: none.
func Locale(locale string) PublishOption {
	return publishOptionFunc(func(s *publishSettings) { s.locale = locale })
}

// Timezone sets bus_timezone (a Rails time zone name such as "Pacific Time (US & Canada)"),
// which Ruby subscribers apply as Time.zone while they run. Default: none.
func Timezone(zone string) PublishOption {
	return publishOptionFunc(func(s *publishSettings) { s.timezone = zone })
}

// WithBusContext sets bus_context, as queue-bus's QueueBus.in_context does. v is encoded as
// JSON. Default: none.
func WithBusContext(v any) PublishOption {
	return publishOptionFunc(func(s *publishSettings) { s.busCtx, s.hasCtx = v, true })
}

func collectPublish(opts []PublishOption) publishSettings {
	var s publishSettings
	for _, o := range opts {
		if o != nil {
			o.applyPublish(&s)
		}
	}
	if s.hostname == "" {
		s.hostname = defaultHostname()
	}
	return s
}

func defaultHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// Publish publishes an event: it enqueues it on bus_incoming as queue-bus's
// QueueBus.publish does, for a driver (a Ferry server with Attach, or a Ruby Sidekiq
// process with sidekiq-bus) to fan out to every subscription it matches. It returns the
// event's bus_id.
//
// attrs is a map with string keys or a struct (anything encoding to a JSON object), or
// nil. The event gets queue-bus's attributes in front of them: bus_published_at (epoch
// seconds), bus_event_type, bus_id ("<epoch>-<uuid>"), bus_app_hostname, and bus_locale,
// bus_timezone or bus_context when set by options. As in queue-bus, an attribute of the
// same name in attrs wins (a republished event keeps its bus_id). The job goes through
// client's push middleware like any other push.
func Publish(ctx context.Context, client *sidekiq.Client, eventType string, attrs any, opts ...PublishOption) (string, error) {
	a, err := attrsFrom(attrs)
	if err != nil {
		return "", err
	}
	return publishAttrs(ctx, client, eventType, a, collectPublish(opts))
}

// PublishAt publishes an event when at comes: it schedules a QueueBus::Publisher job, as
// queue-bus's QueueBus.publish_at does, and returns the event's bus_id, which the event
// keeps when it is published. The event carries bus_delayed_until (at in epoch seconds)
// and gets bus_published_at only when it is published. A time not in the future publishes
// at the next scheduler poll.
func PublishAt(ctx context.Context, client *sidekiq.Client, at time.Time, eventType string, attrs any, opts ...PublishOption) (string, error) {
	a, err := attrsFrom(attrs)
	if err != nil {
		return "", err
	}
	if eventType == "" {
		return "", errors.New("bus: PublishAt: empty event type")
	}
	s := collectPublish(opts)
	given, _ := a.get(attrPublishedAt)
	meta, err := metadata(eventType, s)
	if err != nil {
		return "", err
	}
	out := meta.merged(a)
	epoch := at.Unix()
	if until, _ := out.get(attrDelayedUntil); !rubyTruthy(until) { // Ruby's ||=
		out.setInt(attrDelayedUntil, epoch)
	}
	if !rubyTruthy(given) {
		out.remove(attrPublishedAt) // set when the event is published
	}
	out.setString(attrClassProxy, PublisherClass)
	id, _ := out.str(attrID)
	job := &sidekiq.Job{Class: WorkerClass, Queue: IncomingQueue, Args: workerArgs(out)}
	if _, err := client.PushJob(ctx, job, sidekiq.At(time.Unix(epoch, 0))); err != nil {
		return "", fmt.Errorf("bus: PublishAt %s: %w", eventType, err)
	}
	return id, nil
}

// publishAttrs is QueueBus.publish: metadata, merged with a, enqueued for the driver.
func publishAttrs(ctx context.Context, client *sidekiq.Client, eventType string, a *attrs, s publishSettings) (string, error) {
	if eventType == "" {
		return "", errors.New("bus: Publish: empty event type")
	}
	meta, err := metadata(eventType, s)
	if err != nil {
		return "", err
	}
	out := meta.merged(a)
	out.setString(attrClassProxy, DriverClass)
	id, _ := out.str(attrID)
	job := &sidekiq.Job{Class: WorkerClass, Queue: IncomingQueue, Args: workerArgs(out)}
	if _, err := client.PushJob(ctx, job); err != nil {
		return "", fmt.Errorf("bus: Publish %s: %w", eventType, err)
	}
	return id, nil
}

// metadata is queue-bus's publish_metadata before the merge: the bus_* attributes every
// published event starts with.
func metadata(eventType string, s publishSettings) (*attrs, error) {
	now := s.now
	if now.IsZero() {
		now = time.Now()
	}
	epoch := now.Unix()
	m := &attrs{}
	m.setInt(attrPublishedAt, epoch)
	m.setString(attrEventType, eventType)
	m.setString(attrID, strconv.FormatInt(epoch, 10)+"-"+newUUID())
	m.setString(attrHostname, s.hostname)
	if s.hasCtx {
		raw, err := sidekiq.EncodeArgs([]any{s.busCtx})
		if err != nil {
			return nil, fmt.Errorf("bus: bus_context: %w", err)
		}
		m.set(attrContext, raw[1:len(raw)-1])
	}
	if s.locale != "" {
		m.setString(attrLocale, s.locale)
	}
	if s.timezone != "" {
		m.setString(attrTimezone, s.timezone)
	}
	return m, nil
}

// newUUID returns a random (version 4) UUID, as Ruby's SecureRandom.uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// rubyTruthy reports whether a JSON value is truthy in Ruby: present, and neither null nor
// false.
func rubyTruthy(raw []byte) bool {
	return !isNull(raw) && string(raw) != "false"
}
