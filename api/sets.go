package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetName names one of Sidekiq's job sets. Its value is the Redis key (before any
// namespace).
type SetName string

// Sidekiq's three job sets.
const (
	// ScheduledSet ("schedule") holds jobs pushed with perform_in/perform_at, scored by
	// when they run.
	ScheduledSet SetName = "schedule"
	// RetrySet ("retry") holds failed jobs waiting for their next attempt, scored by when
	// it is due.
	RetrySet SetName = "retry"
	// DeadSet ("dead", the morgue) holds jobs that used up their retries, scored by when
	// they died.
	DeadSet SetName = "dead"
)

// ParseSetName accepts a set's key ("schedule", "retry", "dead") or the words people use
// for it ("scheduled", "retries", "morgue").
func ParseSetName(s string) (SetName, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "schedule", "scheduled":
		return ScheduledSet, nil
	case "retry", "retries":
		return RetrySet, nil
	case "dead", "morgue":
		return DeadSet, nil
	}
	return "", fmt.Errorf("api: unknown set %q: want schedule, retry or dead", s)
}

// check refuses a SetName that is not one of the three sets (a caller's typo would
// otherwise name some other key).
func (s SetName) check() error {
	switch s {
	case ScheduledSet, RetrySet, DeadSet:
		return nil
	}
	return fmt.Errorf("api: %q is not a job set (want %q, %q or %q)", string(s), ScheduledSet, RetrySet, DeadSet)
}

// Size is the number of entries in set (ZCARD).
func (a *API) Size(ctx context.Context, set SetName) (int64, error) {
	if err := set.check(); err != nil {
		return 0, err
	}
	n, err := a.rdb.ZCard(ctx, a.keys.Set(string(set))).Result()
	if err != nil {
		return 0, fmt.Errorf("api: size of %s: %w", set, err)
	}
	return n, nil
}

// ErrStop may be returned by the function given to Each (or EachInQueue) to end the walk
// early; Each then returns nil.
var ErrStop = errors.New("api: stop")

// Each calls fn for every entry of set that matches f (nil matches every entry), in the
// order the Web UI lists them: the schedule and retry sets soonest first, the dead set
// newest first.
//
// The set is read a page (Config.PageSize entries) at a time and f is applied to each
// page as it arrives, so memory stays bounded however big the set is. With f.JIDs the set
// is searched with ZSCAN MATCH *jid* instead, one jid at a time. The set can change
// during the walk (a poller moves due jobs, processes add failures): an entry removed
// meanwhile may be missed, and one added may or may not be seen, as with Ruby's
// JobSet#each. fn may return ErrStop to end the walk.
func (a *API) Each(ctx context.Context, set SetName, f *Filter, fn func(*Entry) error) error {
	if err := set.check(); err != nil {
		return err
	}
	now := a.now()
	visit := func(page []*Entry) ([]bool, error) {
		for _, e := range page {
			if !f.Match(e, now) {
				continue
			}
			if err := fn(e); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	var err error
	if f != nil && len(f.JIDs) > 0 {
		_, err = a.scanJIDs(ctx, set, f.JIDs, visit)
	} else {
		err = a.pages(ctx, set, set == DeadSet, visit)
	}
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// Find returns the entry of set with this jid, or nil when there is none (ZSCAN MATCH,
// as Ruby's JobSet#find_job).
func (a *API) Find(ctx context.Context, set SetName, jid string) (*Entry, error) {
	var found *Entry
	err := a.Each(ctx, set, &Filter{JIDs: []string{jid}}, func(e *Entry) error {
		found = e
		return ErrStop
	})
	return found, err
}

// pageFunc handles one page of entries and reports, for each, whether it removed it from
// the set (nil: removed none), so paging can carry on from the right place.
type pageFunc func(page []*Entry) (removed []bool, err error)

// pages reads set a page at a time in score order (descending when desc), calling fn on
// each page. It pages by score, not by rank: it restarts each read from the last score
// seen, skipping the entries with that score it has seen and that are still there. So
// entries removed before the cursor, by fn or by anyone else (the poller takes due
// retries from the front all the time), shift nothing, and no entry is missed because of
// them. An ascending walk stops at the highest score the set had when it began, so jobs
// that keep failing into the retry set cannot keep it going.
func (a *API) pages(ctx context.Context, set SetName, desc bool, fn pageFunc) error {
	key := a.keys.Set(string(set))
	bound := "+inf"
	if !desc {
		last, err := a.rdb.ZRangeWithScores(ctx, key, -1, -1).Result()
		if err != nil {
			return fmt.Errorf("api: reading %s: %w", set, err)
		}
		if len(last) == 0 {
			return nil
		}
		bound = formatScore(last[0].Score)
	}
	cursor := "-inf"
	if desc {
		cursor = "+inf"
	}
	var (
		skip     int64
		curScore float64
		haveCur  bool
	)
	n := int64(a.cfg.PageSize)
	for {
		var zs []redis.Z
		var err error
		if desc {
			zs, err = a.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: cursor, Min: "-inf", Offset: skip, Count: n}).Result()
		} else {
			zs, err = a.rdb.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: cursor, Max: bound, Offset: skip, Count: n}).Result()
		}
		if err != nil {
			return fmt.Errorf("api: reading %s: %w", set, err)
		}
		if len(zs) == 0 {
			return nil
		}
		page := make([]*Entry, len(zs))
		for i, z := range zs {
			page[i] = newEntry(set, "", z.Score, memberString(z.Member))
		}
		removed, err := fn(page)
		if err != nil {
			return err
		}
		last := zs[len(zs)-1].Score
		var remain int64
		for i, z := range zs {
			if z.Score == last && (removed == nil || !removed[i]) {
				remain++
			}
		}
		if haveCur && last == curScore {
			skip += remain
		} else {
			skip = remain
		}
		curScore, haveCur = last, true
		cursor = formatScore(last)
		if int64(len(zs)) < n {
			return nil
		}
	}
}

func memberString(m any) string {
	switch v := m.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return fmt.Sprint(m)
}

// scanJIDs finds the entries of set holding each jid with ZSCAN MATCH *jid* and hands
// them to fn a ZSCAN reply at a time; it returns the jids no entry had. Redis filters by
// the pattern; fn sees every entry whose payload contains the jid, so it must still
// check the jid itself (Filter.Match does).
func (a *API) scanJIDs(ctx context.Context, set SetName, jids []string, fn pageFunc) (notFound []string, err error) {
	key := a.keys.Set(string(set))
	for _, jid := range dedupe(jids) {
		found := false
		seen := map[string]bool{}
		var cursor uint64
		for {
			var kv []string
			kv, cursor, err = a.rdb.ZScan(ctx, key, cursor, "*"+globEscape(jid)+"*", 1000).Result()
			if err != nil {
				return nil, fmt.Errorf("api: searching %s: %w", set, err)
			}
			var page []*Entry
			for i := 0; i+1 < len(kv); i += 2 {
				if seen[kv[i]] {
					continue // ZSCAN may return an element twice
				}
				seen[kv[i]] = true
				score, perr := strconv.ParseFloat(kv[i+1], 64)
				if perr != nil {
					continue
				}
				e := newEntry(set, "", score, kv[i])
				if e.jid == jid {
					found = true
					page = append(page, e)
				}
			}
			if len(page) > 0 {
				if _, err := fn(page); err != nil {
					return nil, err
				}
			}
			if cursor == 0 {
				break
			}
		}
		if !found {
			notFound = append(notFound, jid)
		}
	}
	return notFound, nil
}

// globEscape escapes the characters Redis's MATCH patterns treat specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func dedupe(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
