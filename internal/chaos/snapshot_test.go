package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/locks"
)

// member is what the accounting needs of one stored payload. It is read leniently
// (a payload whose "args" is not an array is still a JSON object with a jid).
type member struct {
	JID          string `json:"jid"`
	ErrorClass   string `json:"error_class"`
	ErrorMessage string `json:"error_message"`
}

// snapshot is where every job in the private Redis is, by jid.
type snapshot struct {
	queued     map[string]bool
	scheduled  map[string]bool
	inprogress map[string]bool
	retry      map[string]member
	dead       map[string]member
	rawQueued  map[string]bool // payloads that are not JSON objects, by their bytes
	rawDead    map[string]bool
	queueLocks map[string]string // queue lock key → holder jid
	workerLock []string          // worker lock keys
}

func (s *snapshot) waiting(jid string) bool {
	return s.queued[jid] || s.scheduled[jid] || s.inprogress[jid]
}

func takeSnapshot(ctx context.Context, rdb redis.UniversalClient) (*snapshot, error) {
	s := &snapshot{
		queued: map[string]bool{}, scheduled: map[string]bool{}, inprogress: map[string]bool{},
		retry: map[string]member{}, dead: map[string]member{},
		rawQueued: map[string]bool{}, rawDead: map[string]bool{}, queueLocks: map[string]string{},
	}
	addValues := func(vals []string, into map[string]bool) {
		for _, v := range vals {
			var m member
			if json.Unmarshal([]byte(v), &m) != nil || m.JID == "" {
				s.rawQueued[v] = true
				continue
			}
			into[m.JID] = true
		}
	}
	addList := func(key string, into map[string]bool) error {
		vals, err := rdb.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			return fmt.Errorf("LRANGE %s: %w", key, err)
		}
		addValues(vals, into)
		return nil
	}
	queues, err := rdb.SMembers(ctx, "queues").Result()
	if err != nil {
		return nil, fmt.Errorf("SMEMBERS queues: %w", err)
	}
	for _, q := range append(queues, goQueue, rubyQueue) {
		if err := addList("queue:"+q, s.queued); err != nil {
			return nil, err
		}
	}
	hashes, err := rdb.HKeys(ctx, "ferry:inflight").Result() // in-flight hash → owner
	if err != nil {
		return nil, fmt.Errorf("HKEYS ferry:inflight: %w", err)
	}
	for _, h := range hashes {
		vals, err := rdb.HVals(ctx, h).Result()
		if err != nil {
			return nil, fmt.Errorf("HVALS %s: %w", h, err)
		}
		addValues(vals, s.inprogress)
	}
	addSet := func(key string, into func(m member, raw string)) error {
		vals, err := rdb.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			return fmt.Errorf("ZRANGE %s: %w", key, err)
		}
		for _, v := range vals {
			var m member
			if json.Unmarshal([]byte(v), &m) != nil {
				m = member{}
			}
			into(m, v)
		}
		return nil
	}
	if err := addSet("schedule", func(m member, _ string) { s.scheduled[m.JID] = true }); err != nil {
		return nil, err
	}
	if err := addSet("retry", func(m member, _ string) { s.retry[m.JID] = m }); err != nil {
		return nil, err
	}
	if err := addSet("dead", func(m member, raw string) {
		if m.JID == "" {
			s.rawDead[raw] = true
			return
		}
		s.dead[m.JID] = m
	}); err != nil {
		return nil, err
	}
	keys, err := scanKeys(ctx, rdb, locks.QueueKeyPrefix+"*")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		v, err := rdb.Get(ctx, k).Result()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("GET %s: %w", k, err)
		}
		s.queueLocks[k] = v
	}
	if s.workerLock, err = scanKeys(ctx, rdb, locks.WorkerKeyPrefix+"*"); err != nil {
		return nil, err
	}
	return s, nil
}

func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var out []string
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("SCAN %s: %w", pattern, err)
	}
	return out, nil
}

// ledgerState is the ledger read back at the end.
type ledgerState struct {
	pushed, maybe map[string]bool
	class         map[string]string
	runs, fails   map[string]int
	steps         map[string]int    // ChaosSteps: runs of step "a" by jid
	bad, badRaw   map[string]string // malformed jid → kind, and → raw (invalid JSON)
	overlaps      int
	interrupted   int // ChaosSlow runs cut short by SIGTERM
}

func readLedger(ctx context.Context, ledger redis.UniversalClient) (*ledgerState, error) {
	l := &ledgerState{}
	set := func(key string) (map[string]bool, error) {
		vals, err := ledger.SMembers(ctx, key).Result()
		out := make(map[string]bool, len(vals))
		for _, v := range vals {
			out[v] = true
		}
		return out, err
	}
	ints := func(key string) (map[string]int, error) {
		vals, err := ledger.HGetAll(ctx, key).Result()
		out := make(map[string]int, len(vals))
		for k, v := range vals {
			n, perr := strconv.Atoi(v)
			if perr != nil && err == nil {
				err = fmt.Errorf("%s[%s] = %q: %w", key, k, v, perr)
			}
			out[k] = n
		}
		return out, err
	}
	var err error
	if l.pushed, err = set(LedgerPushed); err != nil {
		return nil, err
	}
	if l.maybe, err = set(LedgerMaybe); err != nil {
		return nil, err
	}
	if l.class, err = ledger.HGetAll(ctx, LedgerClass).Result(); err != nil {
		return nil, err
	}
	if l.runs, err = ints(LedgerRuns); err != nil {
		return nil, err
	}
	if l.fails, err = ints(LedgerFails); err != nil {
		return nil, err
	}
	if l.steps, err = ints(LedgerSteps); err != nil {
		return nil, err
	}
	if l.bad, err = ledger.HGetAll(ctx, ledgerBadKind).Result(); err != nil {
		return nil, err
	}
	if l.badRaw, err = ledger.HGetAll(ctx, ledgerBadRaw).Result(); err != nil {
		return nil, err
	}
	n, err := ledger.Get(ctx, LedgerOverlaps).Int()
	if err != nil && err != redis.Nil {
		return nil, err
	}
	l.overlaps = n
	if l.interrupted, err = ledger.Get(ctx, LedgerInterrupted).Int(); err != nil && err != redis.Nil {
		return nil, err
	}
	return l, nil
}
