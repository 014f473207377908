package bus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// Bus is the bus attached to one server (see AttachWith). It is the server's handler for
// QueueBus::Worker jobs and keeps the counts Stats returns.
type Bus struct {
	client *sidekiq.Client
	rdb    redis.UniversalClient
	keys   keyspace
	cfg    Config
	log    *zap.Logger
	apps   map[string]*attachedApp
	dir    *directory
	beat   *heartbeatService

	stats counters

	// afterFanOut, when set (by tests), runs after a driver pushed an event's subscriber
	// jobs and before the event's job is acknowledged.
	afterFanOut func(ctx context.Context, busID string)
}

// attachedApp is an App as a server rides it.
type attachedApp struct {
	app  *App
	subs map[string]*subscription
	mws  []sidekiq.RunMiddleware
}

// Stats counts what a Bus did since it was attached, in this process.
type Stats struct {
	// Driven is how many events this process fanned out (or found nobody for).
	Driven int64
	// Delivered is how many subscriber jobs the driver enqueued.
	Delivered int64
	// Dropped is how many driven events matched no subscription of any application and
	// were therefore dropped, as queue-bus drops them.
	Dropped int64
	// Published is how many delayed events (PublishAt, Ruby's publish_at) were published
	// when they came due.
	Published int64
	// Heartbeats is how many heartbeat_minutes events this process published and recorded
	// as published (bus:heartbeat:timestamp).
	Heartbeats int64
	// Ridden is how many subscriber runs started; Failed how many of them returned an
	// error (their jobs are retried).
	Ridden, Failed int64
	// Unrouted is how many subscriber jobs named a subscription their application (one of
	// this server's) no longer has; they are dropped, as queue-bus drops them.
	Unrouted int64
	// Rejected is how many subscriber jobs were not run because their attributes do not
	// match the subscription they name, or they sit in another subscription's queue (a
	// publisher that set bus_rider_* attributes, or a subscription changed since the event
	// was driven). They go to the dead set.
	Rejected int64
	// Invalid is how many bus jobs carried no readable event; they go to the dead set.
	Invalid int64
}

type counters struct {
	driven, delivered, dropped, published, heartbeats atomic.Int64
	ridden, failed, unrouted, rejected, invalid       atomic.Int64
}

// Stats returns the counts so far.
func (b *Bus) Stats() Stats {
	s := &b.stats
	return Stats{
		Driven: s.driven.Load(), Delivered: s.delivered.Load(), Dropped: s.dropped.Load(),
		Published: s.published.Load(), Heartbeats: s.heartbeats.Load(),
		Ridden: s.ridden.Load(), Failed: s.failed.Load(), Unrouted: s.unrouted.Load(),
		Rejected: s.rejected.Load(), Invalid: s.invalid.Load(),
	}
}

// Perform runs one QueueBus::Worker job: what it does is named by the event's
// bus_class_proxy, as in queue-bus's QueueBus::Worker.perform.
func (b *Bus) Perform(ctx context.Context, job *sidekiq.Job) error {
	a, err := jobAttrs(job)
	if err != nil {
		b.stats.invalid.Add(1)
		return sidekiq.Discard(err)
	}
	proxy, _ := a.str(attrClassProxy)
	switch trimProxy(proxy) {
	case DriverClass:
		return b.drive(ctx, job, a)
	case PublisherClass:
		return b.publishDue(ctx, a)
	case HeartbeatClass:
		_, err := b.heartbeat(ctx)
		return err
	}
	return b.ride(ctx, job, a)
}

// publishDue is queue-bus's QueueBus::Publisher: a delayed event came due; publish it.
func (b *Bus) publishDue(ctx context.Context, a *attrs) error {
	eventType, _ := a.str(attrEventType)
	if eventType == "" {
		b.stats.invalid.Add(1)
		return sidekiq.Discard(fmt.Errorf("%w: delayed event without bus_event_type", errNotEvent))
	}
	id, err := publishAttrs(ctx, b.client, eventType, a, publishSettings{hostname: b.cfg.Hostname, now: b.cfg.Clock.Now()})
	if err != nil {
		return err
	}
	b.stats.published.Add(1)
	b.log.Debug("bus: delayed event published", logcap.String("event_type", eventType), logcap.String("bus_id", id))
	return nil
}

// NotSubscribedError is the error of a subscriber job whose application is not attached
// to this server: another process (a Ruby one, say) should run it. The job is retried, so
// a process that has the application gets another chance at it.
type NotSubscribedError struct {
	// AppKey and SubscriptionKey are what the job names.
	AppKey, SubscriptionKey string
}

func (e *NotSubscribedError) Error() string {
	return fmt.Sprintf("bus: no app %q on this server for subscription %q (its queue is shared with another process's app?)",
		logcap.Cut(e.AppKey, logcap.Max), logcap.Cut(e.SubscriptionKey, logcap.Max))
}

// ErrRejected is matched (errors.Is) by every *RejectedError.
var ErrRejected = errors.New("bus: subscriber job rejected")

// RejectedError is the error of a subscriber job that was not run because it does not
// belong where it is: its attributes do not match the subscription it names, or it sits in
// a queue that is not that subscription's. It goes to the dead set.
type RejectedError struct {
	AppKey, SubscriptionKey string
	// Reason says what did not fit.
	Reason string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("bus: subscriber job for %s/%s rejected: %s",
		logcap.Cut(e.AppKey, logcap.Max), logcap.Cut(e.SubscriptionKey, logcap.Max), e.Reason)
}

// Is matches ErrRejected.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// ErrorClass is the error_class shown in the dead set.
func (e *RejectedError) ErrorClass() string { return "Ferry::Bus::Rejected" }
