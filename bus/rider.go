package bus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// ride is queue-bus's QueueBus::Rider: it runs the subscription a subscriber job names
// (bus_rider_app_key, bus_rider_sub_key), with bus_executed_at added.
//
// The names come from the event, which any publisher writes, so before running anything
// ride checks that the job belongs to that subscription: the job must sit in the
// subscription's queue, and the event must match the subscription's Match as it was when
// driven (ignoring the attributes the driver adds). A job that fails either check is not
// run and goes to the dead set (RejectedError). A job naming a subscription its
// application no longer has is dropped, as queue-bus drops it; one naming an application
// this server does not run fails (NotSubscribedError) so that it is retried, and a process
// that runs that application may take it.
func (b *Bus) ride(ctx context.Context, job *sidekiq.Job, a *attrs) error {
	appKey, _ := a.str(attrRiderAppKey)
	subKey, _ := a.str(attrRiderSubKey)
	if appKey == "" || subKey == "" {
		b.stats.invalid.Add(1)
		proxy, _ := a.str(attrClassProxy)
		return sidekiq.Discard(fmt.Errorf("%w: bus_class_proxy %q is not a bus class and the job names no subscription",
			errNotEvent, logcap.Cut(proxy, logcap.Max)))
	}
	app := b.apps[appKey]
	if app == nil {
		return &NotSubscribedError{AppKey: appKey, SubscriptionKey: subKey}
	}
	sub := app.subs[subKey]
	if sub == nil {
		b.stats.unrouted.Add(1)
		b.log.Warn("bus: subscriber job for a subscription the app no longer has; dropped",
			logcap.String("app", appKey), logcap.String("subscription", subKey), logcap.String("jid", job.JID))
		return nil
	}
	if job.Queue != sub.queue {
		b.stats.rejected.Add(1)
		return sidekiq.Discard(&RejectedError{AppKey: appKey, SubscriptionKey: subKey,
			Reason: fmt.Sprintf("it is in queue %q, the subscription's queue is %q", logcap.Cut(job.Queue, logcap.Max), sub.queue)})
	}
	if !sub.matcher.matchesDriven(a) {
		b.stats.rejected.Add(1)
		return sidekiq.Discard(&RejectedError{AppKey: appKey, SubscriptionKey: subKey,
			Reason: "the event does not match the subscription"})
	}

	a.setInt(attrExecutedAt, b.cfg.Clock.Now().Unix())
	view := job.Clone()
	if job.Extra == nil {
		job.Extra = map[string]json.RawMessage{}
	}
	view.Extra = job.Extra // changes (a worker lock's wait count) go with the job if it is rescheduled
	view.Class = sub.class
	obj := a.appendJSON(make([]byte, 0, 512))
	view.Args = append(append(append(make([]byte, 0, len(obj)+2), '['), obj...), ']')
	ev := &Event{attrs: a, job: view, appKey: appKey, subKey: subKey}

	b.stats.ridden.Add(1)
	err := runChain(ctx, view, app.mws, sub.mws, func(ctx context.Context) error {
		return sub.handler.HandleEvent(ctx, ev)
	})
	if err != nil {
		b.stats.failed.Add(1)
	}
	return err
}

// runChain runs the App's and then the subscription's middleware around last.
func runChain(ctx context.Context, job *sidekiq.Job, outer, inner []sidekiq.RunMiddleware, last func(context.Context) error) error {
	n := len(outer) + len(inner)
	at := func(i int) sidekiq.RunMiddleware {
		if i < len(outer) {
			return outer[i]
		}
		return inner[i-len(outer)]
	}
	var step func(i int) func(context.Context) error
	step = func(i int) func(context.Context) error {
		if i == n {
			return last
		}
		return func(ctx context.Context) error { return at(i).InterceptRun(ctx, job, step(i+1)) }
	}
	return step(0)(ctx)
}

// matchesDriven reports whether the event a subscriber job carries matched m when it was
// driven: filters on the attributes a driver adds (bus_driven_at, bus_rider_*) are not
// checked, and bus_class_proxy is read as it was then (QueueBus::Driver).
func (m *matcher) matchesDriven(a *attrs) bool {
	if len(m.filters) == 0 {
		return false
	}
	var asDriven *attrs
	for i := range m.filters {
		f := &m.filters[i]
		if isRiderKey(f.key) {
			continue
		}
		target := a
		if f.key == attrClassProxy {
			if asDriven == nil {
				asDriven = &attrs{keys: []string{attrClassProxy}, vals: [][]byte{jsonwire.AppendString(nil, DriverClass)}}
			}
			target = asDriven
		}
		if !f.match(target) {
			return false
		}
	}
	return true
}
