package periodic

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// JobInfo describes one job in sidekiq-cron's storage, as List reads it.
type JobInfo struct {
	// Name is the job's name.
	Name string
	// Spec is the job's "cron" field as stored.
	Spec string
	// Class is the class a tick enqueues (for ActiveJob jobs, the ActiveJob class).
	Class string
	// Queue is the queue a tick enqueues into.
	Queue string
	// Status is "enabled" or "disabled" (or whatever else the hash holds, which
	// sidekiq-cron and Ferry both treat as disabled).
	Status string
	// Description is the job's description, if any.
	Description string
	// LastEnqueue is the last time a tick was enqueued, zero if never.
	LastEnqueue time.Time
	// Next is the job's next tick after the time List was called, zero if none within
	// five years or if the job cannot run.
	Next time.Time
	// Err says why the job cannot run (a bad spec, a missing class, ...); nil if it can.
	Err error
}

// Enabled reports whether the job's ticks are enqueued.
func (j JobInfo) Enabled() bool { return j.Status == "enabled" }

// List reads every job in sidekiq-cron's storage (the Web tab's list; what `ferry cron`
// prints), sorted by name: Ruby's, Ferry's, and those that cannot run, with the reason.
// Specs naming no time zone are read in time.Local. It fails only on Redis errors.
func List(ctx context.Context, rdb redis.UniversalClient, namespace string) ([]JobInfo, error) {
	keys := newKeyspace(namespace)
	entries, bad, err := loadEntries(ctx, rdb, keys, time.Local, 100_000)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]JobInfo, 0, len(entries)+len(bad))
	for _, e := range entries {
		info := JobInfo{
			Name: e.name, Spec: e.cron, Class: e.class, Queue: e.queue, Status: e.status,
			LastEnqueue: e.lastEnqueue, Next: e.sched.next(now),
		}
		if e.description != nil {
			info.Description = *e.description
		}
		out = append(out, info)
	}
	for _, b := range bad {
		info := JobInfo{Name: b.name, Err: errors.New(b.reason)}
		// What can still be read is shown: the spec and status.
		if validName(b.name) {
			vals, err := rdb.HMGet(ctx, keys.job(b.name), "cron", "status").Result()
			if err == nil && len(vals) == 2 {
				info.Spec, _ = vals[0].(string)
				info.Status, _ = vals[1].(string)
				info.Spec, info.Status = cut(info.Spec), cut(info.Status)
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// validName reports whether a name can be looked up (bounded, not empty).
func validName(name string) bool { return name != "" && len(name) <= maxNameLen }

// ErrNotFound is returned by Enable and Disable for a job that does not exist.
var ErrNotFound = errors.New("periodic: no such cron job")

// Enable sets a job's status to enabled, as the Web tab's Enable button does.
func Enable(ctx context.Context, rdb redis.UniversalClient, namespace, name string) error {
	return setStatus(ctx, rdb, namespace, name, "enabled")
}

// Disable sets a job's status to disabled, as the Web tab's Disable button does: no
// scheduler or sidekiq-cron poller enqueues its ticks until it is enabled again.
func Disable(ctx context.Context, rdb redis.UniversalClient, namespace, name string) error {
	return setStatus(ctx, rdb, namespace, name, "disabled")
}

func setStatus(ctx context.Context, rdb redis.UniversalClient, namespace, name, status string) error {
	if !validName(name) {
		return fmt.Errorf("%w: %q", ErrNotFound, cut(name))
	}
	n, err := setStatusScript.Run(ctx, rdb, []string{newKeyspace(namespace).job(name)}, status).Int()
	if err != nil {
		return fmt.Errorf("periodic: setting the status of %q: %w", cut(name), err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, cut(name))
	}
	return nil
}
