package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// drive is queue-bus's QueueBus::Driver: it enqueues a subscriber job, on the
// subscription's queue, for every subscription of every application that the event
// matches. The subscriber jobs go in one pipelined round trip. If the process dies
// before the event's own job is acknowledged, the event is driven again by whoever
// recovers it: every subscriber gets it at least once.
func (b *Bus) drive(ctx context.Context, job *sidekiq.Job, a *attrs) error {
	apps, err := b.dir.load(ctx)
	if err != nil {
		return err
	}
	drivenAt := strconv.AppendInt(nil, b.cfg.Clock.Now().Unix(), 10)
	var pushes []sidekiq.JobPush
	for _, app := range apps {
		for _, sub := range app.subs {
			if !sub.matcher.matches(a) {
				continue
			}
			rider := riderAttrs(a, drivenAt, app.key, sub)
			j := &sidekiq.Job{Class: WorkerClass, Queue: sub.queue, Args: workerArgs(rider), Retry: sidekiq.RetryTrue()}
			_ = j.Set("backtrace", true) // as sidekiq-bus's client middleware in a Sidekiq server
			pushes = append(pushes, sidekiq.JobPush{Job: j})
		}
	}
	b.stats.driven.Add(1)
	eventType, _ := a.str(attrEventType)
	busID, _ := a.str(attrID)
	if len(pushes) == 0 {
		b.stats.dropped.Add(1)
		b.log.Debug("bus: event matched no subscription; dropped",
			logcap.String("event_type", eventType), logcap.String("bus_id", busID))
		return nil
	}
	results, err := b.client.PushJobs(ctx, pushes)
	if err != nil {
		return fmt.Errorf("bus: fanning out %s: %w", logcap.Cut(eventType, logcap.Max), err)
	}
	for i, r := range results {
		switch {
		case r.Err == nil:
			b.stats.delivered.Add(1)
		case errors.Is(r.Err, sidekiq.ErrPushStopped):
			// A push middleware chose not to push it (a lock held by an identical job).
			b.log.Debug("bus: subscriber job not pushed", logcap.String("queue", pushes[i].Job.Queue), logcap.Error(r.Err))
		default:
			return fmt.Errorf("bus: fanning out %s to %s: %w", logcap.Cut(eventType, logcap.Max), pushes[i].Job.Queue, r.Err)
		}
	}
	if b.afterFanOut != nil {
		b.afterFanOut(ctx, busID)
	}
	b.log.Debug("bus: event driven", logcap.String("event_type", eventType), logcap.String("bus_id", busID),
		zap.Int("subscribers", len(pushes)), logcap.String("jid", job.JID))
	return nil
}

// riderAttrs is the payload of one subscriber job: queue-bus's bus_driven_at and
// bus_rider_* attributes in front of the event's, and bus_class_proxy naming the
// subscription's class.
//
// queue-bus merges the event over its bus_rider_* values, so a publisher's own
// bus_rider_app_key would decide which subscription a Ruby rider runs. Ferry writes the
// values of the subscription that matched, whatever the event says.
func riderAttrs(a *attrs, drivenAt []byte, appKey string, sub *remoteSub) *attrs {
	out := &attrs{
		keys: make([]string, 0, a.len()+len(riderKeys)),
		vals: make([][]byte, 0, a.len()+len(riderKeys)),
	}
	out.set(attrDrivenAt, drivenAt)
	out.set(attrRiderQueue, jsonwire.AppendString(nil, sub.queue))
	out.set(attrRiderAppKey, jsonwire.AppendString(nil, appKey))
	out.set(attrRiderSubKey, jsonwire.AppendString(nil, sub.key))
	out.set(attrRiderClass, jsonwire.AppendString(nil, sub.class))
	for i, k := range a.keys {
		if isRiderKey(k) {
			continue
		}
		out.set(k, a.vals[i])
	}
	out.set(attrClassProxy, jsonwire.AppendString(nil, sub.class))
	return out
}

func isRiderKey(k string) bool {
	for _, r := range riderKeys {
		if k == r {
			return true
		}
	}
	return false
}
