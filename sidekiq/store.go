package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// store is the only part of a Server that talks to Redis: it owns the keyspace, runs every
// Lua script (scripts.go) and makes every call. Components hold a store and ask it.
//
// A client may send a command again on its own when a reply is lost (go-redis re-sends up
// to MaxRetries times). What a repeat does, call by call:
//
//	fetch     moves more jobs while the first reply's jobs sit unheld: never re-sent
//	          (noRetry); after a failure the fetcher adopts the jobs that call took.
//	wait      BLMOVE of a queue onto itself takes nothing: safe, but not re-sent either.
//	ack       HDEL of fields that are never reused: safe to repeat.
//	outcome   skips jobs whose field is gone: safe to repeat; sent once, the completer
//	          repeats it.
//	requeue   the same: safe to repeat.
//	recover   empties the hash it moves: safe to repeat.
//	promote   ZREM-guarded: safe to repeat.
//	beat      adds the statistics counted since the last beat: never re-sent; a failed
//	          beat gives its counts back to the next one, as Sidekiq does.
//
// Pushes are the Client's (client.go): a plain push re-sent after a lost reply can push a
// job twice (at least once, never lost); a guarded push is never re-sent, because its
// guard would let its own second copy through.
type store struct {
	rdb      redis.UniversalClient
	keys     keyspace
	identity string
	names    []string // queue names, by spec index
	qkeys    []string // queue:<q>, by spec index
	inflight string   // this process's in-flight hash
}

func newStore(rdb redis.UniversalClient, keys keyspace, identity string, specs []queueSpec) *store {
	st := &store{rdb: rdb, keys: keys, identity: identity, inflight: keys.inflight(identity)}
	for _, q := range specs {
		st.names = append(st.names, q.name)
		st.qkeys = append(st.qkeys, keys.Queue(q.name))
	}
	return st
}

// fetchRequest is one batch fetch.
type fetchRequest struct {
	order  []int  // queue indexes to try, in order
	allow  []int  // by queue index: how many more jobs its cap allows (-1: no cap)
	picks  []int  // weighted mode: the queue drawn for each slot
	want   int    // jobs at most
	budget int64  // payload bytes at most (at least one job is taken)
	base   uint64 // seq base (register.reserve)
}

// fetch runs fetchLua and returns the jobs it took.
func (st *store) fetch(ctx context.Context, r fetchRequest) ([]*unit, error) {
	n := len(r.order)
	keys := make([]string, 0, n+3)
	for _, i := range r.order {
		keys = append(keys, st.qkeys[i])
	}
	keys = append(keys, st.inflight, st.keys.inflightIndex(), st.keys.fence(st.identity))
	pos := make([]int, len(st.names)) // queue index -> 1-based position in keys
	for p, i := range r.order {
		pos[i] = p + 1
	}
	args := make([]any, 0, 4+2*n+r.want+len(r.picks))
	args = append(args, r.want, r.budget, r.base, st.identity)
	for _, i := range r.order {
		args = append(args, r.allow[i])
	}
	for _, i := range r.order {
		args = append(args, st.names[i])
	}
	for k := 1; k <= r.want; k++ {
		args = append(args, strconv.FormatUint(r.base+uint64(k), 10))
	}
	for _, q := range r.picks {
		args = append(args, pos[q])
	}
	res, err := fetchScript.run(ctx, st.rdb, keys, args...).Slice()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return nil, err
	}
	return parseFetch(res, r.order, r.base, st.names)
}

// errFetchReply reports a fetch reply that is not what fetchLua returns.
var errFetchReply = errors.New("sidekiq: fetch: unexpected reply")

// parseFetch reads fetchLua's reply into units.
func parseFetch(res []any, order []int, base uint64, names []string) ([]*unit, error) {
	bad := errFetchReply
	if len(res) == 0 {
		return nil, bad
	}
	runs, _ := res[0].(int64)
	if runs < 0 || int(1+2*runs) > len(res) {
		return nil, bad
	}
	payloads := res[1+2*runs:]
	out := make([]*unit, 0, len(payloads))
	for r := 0; r < int(runs); r++ {
		p, _ := res[1+2*r].(int64)
		c, _ := res[2+2*r].(int64)
		if p < 1 || int(p) > len(order) || c < 0 || len(out)+int(c) > len(payloads) {
			return out, bad
		}
		q := order[p-1]
		for j := 0; j < int(c); j++ {
			raw, _ := payloads[len(out)].(string)
			seq := base + uint64(len(out)) + 1
			out = append(out, &unit{seq: seq, field: fieldFor(seq, names[q]), q: q, raw: raw})
		}
	}
	if len(out) != len(payloads) {
		return out, bad
	}
	return out, nil
}

// adopt returns the entries a fetch with seqs in (lo, hi] put in the in-flight hash.
func (st *store) adopt(ctx context.Context, lo, hi uint64) ([]*unit, error) {
	res, err := adoptScript.run(ctx, st.rdb, []string{st.inflight, st.keys.fence(st.identity)}, lo, hi).StringSlice()
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(st.names))
	for i, name := range st.names {
		index[name] = i
	}
	var out []*unit
	for k := 0; k+1 < len(res); k += 2 {
		seq, _ := fieldSeq(res[k])
		name, _ := fieldQueue(res[k])
		q, ok := index[name]
		if !ok {
			continue // not a queue of this process: the reconciler's to return
		}
		out = append(out, &unit{seq: seq, field: res[k], q: q, raw: res[k+1]})
	}
	return out, nil
}

// waitForJob blocks up to timeout until queue q has a job, without taking it: BLMOVE of
// the queue's tail onto its own tail leaves the queue as it was, so a repeat is harmless.
// The fetch that follows takes the job, atomically, if no other process took it first.
func (st *store) waitForJob(ctx context.Context, q int, timeout time.Duration) (bool, error) {
	err := st.rdb.BLMove(ctx, st.qkeys[q], st.qkeys[q], "RIGHT", "RIGHT", timeout).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// noRetryString is noRetry for a StringCmd.
type noRetryString struct{ *redis.StringCmd }

// NoRetry tells go-redis not to re-send the command.
func (noRetryString) NoRetry() bool { return true }

// registerInflight (re)writes this process's entry in the in-flight index.
func (st *store) registerInflight(ctx context.Context) error {
	return st.rdb.HSet(ctx, st.keys.inflightIndex(), st.inflight, st.identity).Err()
}

// ack removes finished jobs from the in-flight hash.
func (st *store) ack(ctx context.Context, fields []string) error {
	return st.rdb.HDel(ctx, st.inflight, fields...).Err()
}

// outcomeWrite is one finished job's outcome, as outcomeLua writes it.
type outcomeWrite struct {
	field   string
	target  byte      // 'r' retry, 's' schedule, 'd' dead, 'x' dropped
	at      time.Time // the score
	payload []byte
}

// writeOutcomes writes outcomes in one call; deadBefore and deadMax trim the dead set.
func (st *store) writeOutcomes(ctx context.Context, ws []outcomeWrite, deadBefore time.Time, deadMax int) error {
	args := make([]any, 0, 2+4*len(ws))
	args = append(args, formatScore(deadBefore), -deadMax)
	for _, w := range ws {
		args = append(args, w.field, string(w.target), formatScore(w.at), w.payload)
	}
	keys := []string{st.inflight, st.keys.Retry(), st.keys.Schedule(), st.keys.Dead()}
	return outcomeScript.run(ctx, st.rdb, keys, args...).Err()
}

// requeue pushes held jobs back to the head of their queues.
func (st *store) requeue(ctx context.Context, units []*unit) (int, error) {
	keys := make([]string, 0, 1+len(units))
	args := make([]any, 0, len(units))
	keys = append(keys, st.inflight)
	for _, u := range units {
		keys = append(keys, st.qkeys[u.q])
		args = append(args, u.field)
	}
	return requeueScript.run(ctx, st.rdb, keys, args...).Int()
}

// requeueFields pushes entries of the in-flight hash back to their queues by field (the
// reconciler's strays). Fields naming a queue this process does not work are skipped.
func (st *store) requeueFields(ctx context.Context, fields []string) (int, error) {
	var units []*unit
	for _, f := range fields {
		name, ok := fieldQueue(f)
		if !ok {
			continue
		}
		for q, n := range st.names {
			if n == name {
				units = append(units, &unit{field: f, q: q})
				break
			}
		}
	}
	if len(units) == 0 {
		return 0, nil
	}
	return st.requeue(ctx, units)
}

// inflightFields reads the fields of this process's in-flight hash.
func (st *store) inflightFields(ctx context.Context) ([]string, error) {
	return st.rdb.HKeys(ctx, st.inflight).Result()
}

// returnAll pushes everything left in this process's in-flight hash back to the head of
// its queue and unregisters the hash: the end of a stop.
func (st *store) returnAll(ctx context.Context) (int, error) {
	return st.recoverHash(ctx, st.inflight, st.identity, true)
}

// recoverHash runs recoverLua on one in-flight hash, naming the queues its fields hold.
func (st *store) recoverHash(ctx context.Context, hash, owner string, own bool) (int, error) {
	for attempt := 0; attempt < 3; attempt++ {
		fields, err := st.rdb.HKeys(ctx, hash).Result()
		if err != nil {
			return 0, err
		}
		seen := map[string]bool{}
		keys := []string{hash, st.keys.inflightIndex(), st.keys.Process(owner)}
		mode := "dead"
		if own {
			mode = "own"
		}
		args := []any{hash, mode}
		for _, f := range fields {
			q, ok := fieldQueue(f)
			if !ok {
				return 0, fmt.Errorf("sidekiq: in-flight hash %s holds field %q, which is not <seq>:<queue>", hash, f)
			}
			if !seen[q] {
				seen[q] = true
				keys = append(keys, st.keys.Queue(q))
				args = append(args, q)
			}
		}
		n, err := recoverScript.run(ctx, st.rdb, keys, args...).Int()
		if err != nil || n != -2 {
			return n, err
		}
		// A field appeared between HKEYS and the script (the owner was still fetching):
		// read again.
	}
	return 0, fmt.Errorf("sidekiq: in-flight hash %s kept changing", hash)
}

// deadOwner is an in-flight hash or legacy list whose owner may be dead.
type deadOwner struct {
	key      string
	identity string
	queue    string // legacy lists only
	legacy   bool
}

// inflightOwners reads both indexes.
func (st *store) inflightOwners(ctx context.Context) ([]deadOwner, error) {
	var h, l *redis.MapStringStringCmd
	_, err := st.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, st.keys.inflightIndex())
		l = p.HGetAll(ctx, st.keys.legacyIndex())
		return nil
	})
	if err != nil {
		return nil, err
	}
	hashes, lists := h.Val(), l.Val()
	var out []deadOwner
	for key, identity := range hashes {
		out = append(out, deadOwner{key: key, identity: identity})
	}
	for key, owner := range lists {
		identity, queue, ok := parseLegacyOwner(owner)
		if ok {
			out = append(out, deadOwner{key: key, identity: identity, queue: queue, legacy: true})
		}
	}
	return out, nil
}

// recoverOwner returns the jobs of one index entry if its owner is dead; -1 means alive.
func (st *store) recoverOwner(ctx context.Context, o deadOwner) (int, error) {
	if o.legacy {
		return recoverListScript.run(ctx, st.rdb,
			[]string{o.key, st.keys.Queue(o.queue), st.keys.legacyIndex(), st.keys.Process(o.identity)},
			o.key).Int()
	}
	return st.recoverHash(ctx, o.key, o.identity, false)
}

// parseLegacyOwner reads a legacy index value: the quoted identity and queue.
func parseLegacyOwner(v string) (identity, queue string, ok bool) {
	id, rest, err := unquotePrefix(v)
	if err != nil || len(rest) < 2 || rest[0] != ' ' {
		return "", "", false
	}
	q, rest, err := unquotePrefix(rest[1:])
	if err != nil || rest != "" {
		return "", "", false
	}
	return id, q, true
}

func unquotePrefix(s string) (string, string, error) {
	p, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	u, err := strconv.Unquote(p)
	return u, s[len(p):], err
}

// dueMembers reads up to n members of set due at now.
func (st *store) dueMembers(ctx context.Context, set string, now time.Time, n int) ([]string, error) {
	return st.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: set, Start: "-inf", Stop: formatScore(now), ByScore: true, Count: int64(n),
	}).Result()
}

// promote runs promoteLua with the destination queues' keys.
func (st *store) promote(ctx context.Context, set string, queueKeys []string, args []any) (int, error) {
	keys := append([]string{set, st.keys.Queues(), st.keys.Dead()}, queueKeys...)
	return promoteScript.run(ctx, st.rdb, keys, args...).Int()
}

// processCount is how many processes are registered.
func (st *store) processCount(ctx context.Context) (int64, error) {
	return st.rdb.SCard(ctx, st.keys.Processes()).Result()
}

// ping measures the round trip.
func (st *store) ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	err := st.rdb.Ping(ctx).Err()
	return time.Since(start), err
}

// beatWrite is what one heartbeat writes.
type beatWrite struct {
	now               time.Time
	processed, failed int64
	info              string
	busy, concurrency int
	quiet             bool
	rssKB             int64
	rtt               time.Duration
	ttl               time.Duration
	workFull          bool     // rewrite the running-job hashes from workSet alone
	workDel           []string // tids no longer running
	workSet           []any    // tid, entry, tid, entry, ...
	extra             func(ctx context.Context, p redis.Pipeliner)
}

// beat writes a heartbeat in one MULTI/EXEC (see heartbeat.go) and returns the remote
// signal it popped, if any.
func (st *store) beat(ctx context.Context, b *beatWrite) (string, error) {
	var signal *redis.StringCmd
	_, err := st.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		queueStats(ctx, p, st.keys, b.now, b.processed, b.failed)
		for _, key := range []string{st.keys.Work(st.identity), st.keys.Workers(st.identity)} {
			if b.workFull {
				p.Del(ctx, key)
			} else if len(b.workDel) > 0 {
				p.HDel(ctx, key, b.workDel...)
			}
			if len(b.workSet) > 0 {
				p.HSet(ctx, key, b.workSet...)
			}
			if b.busy > 0 {
				p.Expire(ctx, key, b.ttl)
			}
		}
		if b.extra != nil {
			b.extra(ctx, p)
		}
		p.SAdd(ctx, st.keys.Processes(), st.identity)
		p.HSet(ctx, st.keys.Process(st.identity),
			"info", b.info,
			"busy", b.busy,
			"beat", string(jsonwire.AppendFloat(nil, epochSeconds(b.now))),
			"quiet", strconv.FormatBool(b.quiet),
			"rss", b.rssKB,
			"rtt_us", b.rtt.Microseconds(),
			"concurrency", b.concurrency,
		)
		p.Expire(ctx, st.keys.Process(st.identity), b.ttl)
		p.HSet(ctx, st.keys.inflightIndex(), st.inflight, st.identity)
		signal = redis.NewStringCmd(ctx, "rpop", st.keys.Signals(st.identity))
		return p.Process(ctx, noRetryString{signal})
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", err
	}
	sig, _ := signal.Result()
	return sig, nil
}

// flushMetrics writes the execution metrics recorded since the last flush.
func (st *store) flushMetrics(ctx context.Context, m *execMetrics, now time.Time) error {
	_, err := st.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		m.flush(ctx, p, st.keys, now)
		return nil
	})
	return err
}

// clearProcess takes the process off the Web UI on a clean stop: out of the processes
// set, running jobs deleted. The process hash expires by itself, as Sidekiq leaves it.
func (st *store) clearProcess(ctx context.Context) error {
	_, err := st.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, st.keys.Processes(), st.identity)
		p.Del(ctx, st.keys.Work(st.identity), st.keys.Workers(st.identity), st.keys.fence(st.identity))
		p.HSet(ctx, st.keys.Process(st.identity), "quiet", "true", "busy", 0)
		return nil
	})
	return err
}

// unregister removes the process record outright: a start that failed.
func (st *store) unregister(ctx context.Context) error {
	_, err := st.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, st.keys.Processes(), st.identity)
		p.Del(ctx, st.keys.Process(st.identity), st.keys.Work(st.identity), st.keys.Workers(st.identity))
		return nil
	})
	return err
}

// bounded runs f and returns its error, or ctx's error as soon as ctx ends: a call to a
// Redis that hangs (stopped, partitioned) then goes on in the background, and whatever
// it left undone (jobs in the in-flight hash) is where recovery finds it.
func bounded(ctx context.Context, f func(ctx context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- f(context.WithoutCancel(ctx)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
