package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// Result tells what a bulk action did.
type Result struct {
	// Matched is the number of entries that matched the filter.
	Matched int
	// Done is the number of entries moved (Retry, Kill) or removed (Delete).
	Done int
	// Gone is the number of matched entries that had left the set before the action
	// reached them (a poller ran them, another operator moved them).
	Gone int
	// Skipped is the number of matched entries left in place because the action cannot
	// apply to them: Retry skips a payload that is not a valid job (Ruby's API would
	// remove it and then fail to push it, losing it). Delete and Kill skip nothing.
	Skipped int
	// Skips explains the first MaxSkips skipped entries.
	Skips []Skip
	// NotFound lists the jids of Filter.JIDs that no entry of the set had.
	NotFound []string
}

// MaxSkips bounds Result.Skips.
const MaxSkips = 100

// Skip is one entry an action left in place, and why.
type Skip struct {
	// JID is the entry's jid ("" when the payload has none).
	JID string
	// Reason says why, cut to a few hundred bytes.
	Reason string
}

func (r *Result) skip(e *Entry, reason string) {
	r.Skipped++
	if len(r.Skips) < MaxSkips {
		r.Skips = append(r.Skips, Skip{JID: logcap.Cut(e.jid, 64), Reason: logcap.Cut(reason, logcap.Max)})
	}
}

// Action is what a bulk call does to each matched entry.
type Action uint8

// The actions of Apply.
const (
	// ActionRetry puts entries back on their queues: Ruby's SortedEntry#retry for retry
	// and dead entries (retry_count goes down by one, so a manual retry uses up no
	// attempt) and SortedEntry#add_to_queue for scheduled ones (unchanged). enqueued_at is
	// set to now; a missing queue, retry, jid or created_at gets Sidekiq's default, as
	// Sidekiq::Client#push would give it.
	ActionRetry Action = iota + 1
	// ActionDelete removes entries (Ruby's SortedEntry#delete).
	ActionDelete
	// ActionKill moves entries unchanged into the dead set, scored now, and trims the
	// dead set to DeadMaxJobs and DeadTimeout (Ruby's SortedEntry#kill). Entries of the
	// dead set cannot be killed again.
	ActionKill
)

// String names the action ("retry", "delete", "kill").
func (a Action) String() string {
	switch a {
	case ActionRetry:
		return "retry"
	case ActionDelete:
		return "delete"
	case ActionKill:
		return "kill"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ErrAlreadyDead is returned when asked to kill entries of the dead set.
var ErrAlreadyDead = errors.New("api: entries of the dead set are dead already")

// Retry puts every entry of set matching f back on its queue; see ActionRetry. A nil f
// matches every entry (Ruby's retry_all).
func (a *API) Retry(ctx context.Context, set SetName, f *Filter) (*Result, error) {
	return a.Apply(ctx, ActionRetry, set, f)
}

// Delete removes every entry of set matching f; see ActionDelete. A nil f matches every
// entry.
func (a *API) Delete(ctx context.Context, set SetName, f *Filter) (*Result, error) {
	return a.Apply(ctx, ActionDelete, set, f)
}

// Kill moves every entry of set (schedule or retry) matching f to the dead set; see
// ActionKill. A nil f matches every entry (Ruby's kill_all).
func (a *API) Kill(ctx context.Context, set SetName, f *Filter) (*Result, error) {
	return a.Apply(ctx, ActionKill, set, f)
}

// Apply does action to every entry of set matching f (nil: every entry), a page at a
// time: the set is read in pages of Config.PageSize entries (or searched with ZSCAN for
// f.JIDs), the filter applied to each page, and the page's matches acted on in one Lua
// call, atomically per entry, before the next page is read. Memory stays bounded by the
// page size whatever the size of the set.
//
// On an error (Redis unreachable, a cancelled context) the entries of earlier pages stay
// acted on, and the Result counts them.
func (a *API) Apply(ctx context.Context, action Action, set SetName, f *Filter) (*Result, error) {
	switch action {
	case ActionRetry, ActionDelete:
	case ActionKill:
		if set == DeadSet {
			return nil, ErrAlreadyDead
		}
	default:
		return nil, fmt.Errorf("api: unknown action %v", action)
	}
	if err := set.check(); err != nil {
		return nil, err
	}
	res := &Result{}
	now := a.now()
	handle := func(page []*Entry) ([]bool, error) {
		var matched []int
		for i, e := range page {
			if f.Match(e, now) {
				matched = append(matched, i)
			}
		}
		if len(matched) == 0 {
			return nil, nil
		}
		res.Matched += len(matched)
		out, err := a.act(ctx, action, set, page, matched, res)
		if err != nil {
			return nil, err
		}
		// Moved by the action or gone before it (another process moved them): either way
		// no longer in the set, which paging must know to carry on from the right place.
		removed := make([]bool, len(page))
		for _, i := range out {
			removed[i] = true
		}
		return removed, nil
	}
	var err error
	if f != nil && len(f.JIDs) > 0 {
		res.NotFound, err = a.scanJIDs(ctx, set, f.JIDs, handle)
	} else {
		err = a.pages(ctx, set, false, handle)
	}
	if err != nil {
		return res, fmt.Errorf("api: %s in %s: %w", action, set, err)
	}
	return res, nil
}

// act applies action to page[matched...] and returns the page indexes no longer in the set:
// those it moved and those already gone (it counts both in res); entries it left in place
// (a retry of a payload that is not a job) are not among them.
func (a *API) act(ctx context.Context, action Action, set SetName, page []*Entry, matched []int, res *Result) ([]int, error) {
	key := a.keys.Set(string(set))
	var (
		tried []int // page indexes sent to Redis, in order
		moved []any
		err   error
	)
	switch action {
	case ActionDelete:
		cmds := make([]*redis.IntCmd, len(matched))
		_, err = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range matched {
				cmds[j] = p.ZRem(ctx, key, page[i].Value)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		var done []int
		for j, c := range cmds {
			if c.Val() == 1 {
				done = append(done, matched[j])
			}
		}
		res.Done += len(done)
		res.Gone += len(matched) - len(done)
		return matched, nil
	case ActionKill:
		now := a.now()
		args := []any{
			formatScore(epochSeconds(now)),
			formatScore(epochSeconds(now.Add(-a.cfg.DeadTimeout))),
			a.cfg.DeadMaxJobs,
		}
		for _, i := range matched {
			args = append(args, page[i].Value)
		}
		tried = matched
		moved, err = killScript.Run(ctx, a.rdb, []string{key, a.keys.Dead()}, args...).Slice()
	case ActionRetry:
		keys := []string{key, a.keys.Queues()}
		var args []any
		for _, i := range matched {
			e := page[i]
			payload, queue, why := a.requeuePayload(e, set)
			if why != "" {
				res.skip(e, why)
				continue
			}
			tried = append(tried, i)
			keys = append(keys, a.keys.Queue(queue))
			args = append(args, e.Value, payload, queue)
		}
		if len(tried) == 0 {
			return nil, nil
		}
		moved, err = requeueScript.Run(ctx, a.rdb, keys, args...).Slice()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	done := make([]int, 0, len(moved))
	for _, m := range moved {
		n, ok := m.(int64)
		if !ok || n < 1 || int(n) > len(tried) {
			continue
		}
		done = append(done, tried[n-1])
	}
	res.Done += len(done)
	res.Gone += len(tried) - len(done)
	return tried, nil
}

// maxQueueName bounds the queue name a payload may send a retried job to; a longer one is
// not a queue anyone works.
const maxQueueName = 1024

// requeuePayload rewrites an entry for its queue as Sidekiq::Client#push would write it
// after SortedEntry#retry (retry_count - 1) or #add_to_queue (scheduled: unchanged). why
// is non-empty when the entry cannot be requeued.
func (a *API) requeuePayload(e *Entry, set SetName) (payload []byte, queue, why string) {
	if e.Job == nil {
		return nil, "", "not a valid job payload: " + e.Err.Error()
	}
	job := e.Job.Clone()
	if set != ScheduledSet && job.RetryCount != nil {
		n := *job.RetryCount - 1
		job.RetryCount = &n
	}
	if job.Queue == "" {
		job.Queue = "default"
	}
	if len(job.Queue) > maxQueueName {
		return nil, "", fmt.Sprintf("queue name of %d bytes", len(job.Queue))
	}
	if !job.Retry.IsSet() {
		job.Retry = sidekiq.RetryTrue()
	}
	if job.JID == "" {
		job.JID = sidekiq.NewJID()
	}
	now := a.now()
	if job.CreatedAt.IsZero() {
		job.CreatedAt = now
	}
	job.EnqueuedAt = now
	return job.AppendJSON(nil, a.cfg.TimeFormat), job.Queue, ""
}
