package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// EachInQueue calls fn for every job of queue name that matches f (nil: every job),
// oldest first (the order they run in), reading Config.PageSize jobs at a time with
// LRANGE from the tail. It stops after as many jobs as the queue held when it began.
// Queues change fast: jobs taken by workers during the walk shift the rest, so some may be
// missed; use it to look, not to account. fn may return ErrStop to end the walk.
func (a *API) EachInQueue(ctx context.Context, name string, f *Filter, fn func(*Entry) error) error {
	now := a.now()
	err := a.queuePages(ctx, name, func(page []*Entry) ([]bool, error) {
		for _, e := range page {
			if !f.Match(e, now) {
				continue
			}
			if err := fn(e); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// queuePages reads queue name from the tail (oldest first) a page at a time, calling fn
// on each page; entries fn reports removed no longer count towards the offset of the
// next page.
func (a *API) queuePages(ctx context.Context, name string, fn pageFunc) error {
	key := a.keys.Queue(name)
	size, err := a.rdb.LLen(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("api: size of queue %s: %w", name, err)
	}
	n := int64(a.cfg.PageSize)
	var off, seen int64 // off: entries still in the list behind the next page
	for seen < size {
		stop := -1 - off
		start := stop - n + 1
		vals, err := a.rdb.LRange(ctx, key, start, stop).Result()
		if err != nil {
			return fmt.Errorf("api: reading queue %s: %w", name, err)
		}
		if len(vals) == 0 {
			return nil
		}
		if left := size - seen; int64(len(vals)) > left {
			vals = vals[int64(len(vals))-left:] // the newest ones arrived after the start
		}
		page := make([]*Entry, len(vals))
		for i := range vals {
			page[i] = newEntry("", name, 0, vals[len(vals)-1-i])
		}
		removed, err := fn(page)
		if err != nil {
			return err
		}
		kept := int64(len(page))
		for _, r := range removed {
			if r {
				kept--
			}
		}
		off += kept
		seen += int64(len(page))
		if int64(len(vals)) < n {
			return nil
		}
	}
	return nil
}

// DeleteFromQueue removes the jobs of queue name that match f, which must select
// something (a nil or empty filter is an error; ClearQueue empties a queue). Each job is
// removed by its exact value with LREM, as Ruby's JobRecord#delete does, a page of
// Config.PageSize jobs per pipelined round trip.
func (a *API) DeleteFromQueue(ctx context.Context, name string, f *Filter) (*Result, error) {
	if f.IsZero() {
		return nil, errors.New("api: DeleteFromQueue needs a filter")
	}
	res := &Result{}
	found := map[string]bool{}
	now := a.now()
	key := a.keys.Queue(name)
	err := a.queuePages(ctx, name, func(page []*Entry) ([]bool, error) {
		var matched []int
		for i, e := range page {
			if f.Match(e, now) {
				matched = append(matched, i)
				found[e.jid] = true
			}
		}
		if len(matched) == 0 {
			return nil, nil
		}
		res.Matched += len(matched)
		cmds := make([]*redis.IntCmd, len(matched))
		_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range matched {
				// -1: the first equal value from the tail, where this walk reads.
				cmds[j] = p.LRem(ctx, key, -1, page[i].Value)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		removed := make([]bool, len(page))
		for j, c := range cmds {
			if c.Val() > 0 {
				removed[matched[j]] = true
				res.Done++
			} else {
				res.Gone++
			}
		}
		return removed, nil
	})
	if err != nil {
		return res, fmt.Errorf("api: delete in queue %s: %w", name, err)
	}
	for _, j := range dedupe(f.JIDs) {
		if !found[j] {
			res.NotFound = append(res.NotFound, j)
		}
	}
	return res, nil
}

// ClearQueue deletes queue name and removes it from the queues set in one MULTI/EXEC, as
// Ruby's Queue#clear.
func (a *API) ClearQueue(ctx context.Context, name string) error {
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Unlink(ctx, a.keys.Queue(name))
		p.SRem(ctx, a.keys.Queues(), name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("api: clearing queue %s: %w", name, err)
	}
	return nil
}
