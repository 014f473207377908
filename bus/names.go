package bus

import (
	"strings"
	"unicode/utf8"
)

// The names queue-bus writes into Redis and into job payloads. They are part of the wire
// format: Ruby processes read them.
const (
	// IncomingQueue is the queue published events wait in until a driver fans them out
	// (queue-bus's default incoming_queue).
	IncomingQueue = "bus_incoming"
	// WorkerClass is the job class of every bus job: published events, subscriber jobs,
	// delayed publishes and heartbeats. What the job does is named by the event's
	// "bus_class_proxy" attribute.
	WorkerClass = "QueueBus::Worker"
	// DriverClass, as bus_class_proxy, marks a published event waiting to be fanned out.
	DriverClass = "QueueBus::Driver"
	// PublisherClass, as bus_class_proxy, marks an event published with PublishAt, to be
	// published when it is due.
	PublisherClass = "QueueBus::Publisher"
	// HeartbeatClass, as bus_class_proxy, asks a driver to publish the heartbeat_minutes
	// events (sidekiq-bus's scheduled heartbeat enqueues it every minute).
	HeartbeatClass = "QueueBus::Heartbeat"
	// RiderClass is the class queue-bus's dispatch subscriptions (and Ferry's) register:
	// the bus_class_proxy of the subscriber jobs a driver enqueues for them.
	RiderClass = "::QueueBus::Rider"
	// HeartbeatEvent is the event type of the per-minute heartbeat events.
	HeartbeatEvent = "heartbeat_minutes"
)

// Keys and attribute names.
const (
	appsKey          = "bus_apps"
	appKeyPrefix     = "bus_app:"
	heartbeatLockKey = "bus:heartbeat:lock"
	heartbeatTimeKey = "bus:heartbeat:timestamp"

	attrPublishedAt   = "bus_published_at"
	attrEventType     = "bus_event_type"
	attrID            = "bus_id"
	attrHostname      = "bus_app_hostname"
	attrContext       = "bus_context"
	attrLocale        = "bus_locale"
	attrTimezone      = "bus_timezone"
	attrClassProxy    = "bus_class_proxy"
	attrDelayedUntil  = "bus_delayed_until"
	attrDrivenAt      = "bus_driven_at"
	attrRiderQueue    = "bus_rider_queue"
	attrRiderAppKey   = "bus_rider_app_key"
	attrRiderSubKey   = "bus_rider_sub_key"
	attrRiderClass    = "bus_rider_class_name"
	attrExecutedAt    = "bus_executed_at"
	defaultQueueLabel = "default"
)

// riderKeys are the attributes a driver puts in front of an event it fans out, in
// queue-bus's order.
var riderKeys = [...]string{attrDrivenAt, attrRiderQueue, attrRiderAppKey, attrRiderSubKey, attrRiderClass}

// keyspace builds the bus's Redis keys under an optional namespace, as the sidekiq
// package does: "<ns>:bus_apps".
type keyspace struct{ prefix string }

func newKeyspace(namespace string) keyspace {
	if namespace == "" {
		return keyspace{}
	}
	return keyspace{prefix: namespace + ":"}
}

func (k keyspace) apps() string             { return k.prefix + appsKey }
func (k keyspace) app(appKey string) string { return k.prefix + appKeyPrefix + appKey }
func (k keyspace) appPrefix() string        { return k.prefix + appKeyPrefix }
func (k keyspace) heartbeatLock() string    { return k.prefix + heartbeatLockKey }
func (k keyspace) heartbeatTime() string    { return k.prefix + heartbeatTimeKey }

// Normalize returns name as queue-bus normalizes application keys and queue names
// (Ruby's name.to_s.gsub(/\W/, '_').downcase): every character other than an ASCII
// letter, digit or underscore becomes one underscore, and letters are lowered. A
// normalized name can therefore never hold ':' or any other character that would reach
// outside "queue:<name>" or "bus_app:<name>". Each byte of invalid UTF-8 becomes one
// underscore.
func Normalize(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
			i++
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b.WriteByte(c)
			i++
		case c < utf8.RuneSelf:
			b.WriteByte('_')
			i++
		default:
			_, size := utf8.DecodeRuneInString(name[i:])
			b.WriteByte('_')
			i += size
		}
	}
	return b.String()
}

// validAppKey reports whether a normalized application key is one queue-bus accepts: not
// empty and not only underscores.
func validAppKey(normalized string) bool {
	return strings.Trim(normalized, "_") != ""
}

// trimProxy drops the leading "::" Ruby allows in a constant name.
func trimProxy(class string) string { return strings.TrimPrefix(class, "::") }
