package locks_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

// A payload is untrusted: no field of it may choose a Redis key outside the keyspace the
// field belongs to. These tests push payloads whose lock fields name Sidekiq's own keys and
// check that nothing but the job's own outcome changes in Redis.

// snapshot returns every key of the database with its type and content, for comparing
// the whole database before and after.
func snapshot(t *testing.T, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		typ := rdb.Type(ctx, k).Val()
		var content any
		switch typ {
		case "string":
			content = rdb.Get(ctx, k).Val()
		case "list":
			content = rdb.LRange(ctx, k, 0, -1).Val()
		case "hash":
			content = rdb.HGetAll(ctx, k).Val()
		case "set":
			m := rdb.SMembers(ctx, k).Val()
			sort.Strings(m)
			content = m
		case "zset":
			content = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		}
		out[k] = fmt.Sprintf("%s %v", typ, content)
	}
	return out
}

func diff(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "deleted "+k)
		} else if w != v {
			d = append(d, fmt.Sprintf("changed %s: %s -> %s", k, v, w))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "created "+k)
		}
	}
	sort.Strings(d)
	return d
}

// seedSidekiqKeys fills the keys a hostile digest would aim at, under prefix p.
func seedSidekiqKeys(t *testing.T, rdb redis.UniversalClient, p string) {
	t.Helper()
	ctx := context.Background()
	waiting := []any{
		`{"class":"Charge","jid":"c1c1c1c1c1c1c1c1c1c1c1c1","args":[1],"queue":"critical"}`,
		`{"class":"Charge","jid":"c2c2c2c2c2c2c2c2c2c2c2c2","args":[2],"queue":"critical"}`,
	}
	if err := rdb.LPush(ctx, p+"queue:critical", waiting...).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.SAdd(ctx, p+"queues", "critical")
	far := float64(time.Now().Add(24 * time.Hour).Unix())
	rdb.ZAdd(ctx, p+"retry", redis.Z{Score: far, Member: `{"class":"Charge","jid":"r1r1r1r1r1r1r1r1r1r1r1r1","args":[3],"queue":"critical","retry_count":1}`})
	rdb.ZAdd(ctx, p+"schedule", redis.Z{Score: far, Member: `{"class":"Charge","jid":"s1s1s1s1s1s1s1s1s1s1s1s1","args":[4],"queue":"critical"}`})
	rdb.Set(ctx, p+"stat:processed", "evil", 0) // a string key holding the hostile jid
}

// TestUniqueJobsDigestCannotNameSidekiqKeys is issue 14, item 1, end to end: a Ruby-shaped
// payload whose lock_digest names one of Sidekiq's keys runs through a real Server with
// UniqueJobs installed. On the unfixed middleware, the failing job's relock replaced
// queue:critical (or retry) with a string holding its jid, and with "retry": 0 the death
// handler then deleted the key.
func TestUniqueJobsDigestCannotNameSidekiqKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target  string // the key the payload names
		retry   string // the payload's retry field, "" for none
		ns      string
		outcome sidekiq.Outcome
	}{
		{target: "queue:critical", outcome: sidekiq.OutcomeRetried},
		{target: "queue:critical", retry: `,"retry":0`, outcome: sidekiq.OutcomeDead},
		{target: "retry", outcome: sidekiq.OutcomeRetried},
		{target: "retry", retry: `,"retry":0`, outcome: sidekiq.OutcomeDead},
		{target: "queue:critical", ns: "app", outcome: sidekiq.OutcomeRetried},
		{target: "retry", retry: `,"retry":0`, ns: "app", outcome: sidekiq.OutcomeDead},
	}
	for _, tc := range tests {
		name := tc.target + tc.retry + " ns=" + tc.ns
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := testsuite.RealRedis(t)
			p := ""
			if tc.ns != "" {
				p = tc.ns + ":"
			}
			seedSidekiqKeys(t, r.Client, p)
			critical := r.Client.LRange(ctx, p+"queue:critical", 0, -1).Val()
			retried := r.Client.ZRange(ctx, p+"retry", 0, -1).Val()

			core, logs := observer.New(zap.WarnLevel)
			u := locks.UniqueJobs(r.Client, locks.UniqueRedisNamespace(tc.ns), locks.UniqueLogger(zap.New(core)))
			srv := sidekiq.NewServer(r.Client, &sidekiq.Config{Concurrency: 1, Namespace: tc.ns, Queues: []string{"default"},
				FetchTimeout: 50 * time.Millisecond, PollInterval: time.Hour, OnDeath: u.OnDeath})
			srv.Use(u)
			finished := make(chan *sidekiq.JobEvent, 1)
			srv.Observe(finishObserver{f: func(ev *sidekiq.JobEvent) { finished <- ev }})
			evil := `{"class":"NoSuchClass","jid":"evil","args":[],"lock":"until_executing","lock_digest":"` + tc.target + `"` + tc.retry + `}`
			r.Client.LPush(ctx, p+"queue:default", evil)
			if err := srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stopServer(t, srv) })
			ev := receive(t, finished, "the hostile job to finish")
			if ev.Outcome != tc.outcome || !errors.Is(ev.Err, sidekiq.ErrNoHandler) {
				t.Fatalf("outcome %v (%v), want %v with no handler", ev.Outcome, ev.Err, tc.outcome)
			}

			if typ := r.Client.Type(ctx, p+"queue:critical").Val(); typ != "list" {
				t.Fatalf("%squeue:critical is a %s now, want the list it was", p, typ)
			}
			if got := r.Client.LRange(ctx, p+"queue:critical", 0, -1).Val(); strings.Join(got, "\n") != strings.Join(critical, "\n") {
				t.Errorf("queue:critical = %v, want its two waiting jobs %v", got, critical)
			}
			if typ := r.Client.Type(ctx, p+"retry").Val(); typ != "zset" {
				t.Fatalf("%sretry is a %s now, want the sorted set it was", p, typ)
			}
			got := r.Client.ZRange(ctx, p+"retry", 0, -1).Val()
			want := len(retried)
			if tc.outcome == sidekiq.OutcomeRetried {
				want++ // the hostile job itself
			}
			if len(got) != want || !strings.Contains(strings.Join(got, "\n"), retried[0]) {
				t.Errorf("retry = %v, want the waiting retry kept (and the hostile job if retried)", got)
			}
			for _, suffix := range []string{"", ":LOCKED", ":QUEUED", ":PRIMED", ":INFO"} {
				if suffix != "" && r.Client.Exists(ctx, p+tc.target+suffix).Val() != 0 {
					t.Errorf("%s%s%s was created", p, tc.target, suffix)
				}
			}
			if n := r.Client.Exists(ctx, p+locks.SUJDigestsKey, p+locks.SUJChangelogKey).Val(); n != 0 {
				t.Errorf("the hostile job wrote %d of the gem's bookkeeping keys", n)
			}
			// Sidekiq still works on the keys: a push to the critical queue succeeds.
			client := sidekiq.NewClient(r.Client, &sidekiq.ClientConfig{Namespace: tc.ns})
			if _, err := client.Push(ctx, "Charge", []any{5}, sidekiq.Queue("critical")); err != nil {
				t.Fatalf("push to queue:critical after the hostile job: %v", err)
			}
			if n := logs.FilterMessageSnippet("outside").Len(); n != 1 {
				t.Errorf("%d warnings about the digest, want 1: %v", n, logs.All())
			}
		})
	}
}

// finishObserver hands every finished job to a function.
type finishObserver struct {
	sidekiq.ObserverDefaults
	f func(*sidekiq.JobEvent)
}

func (o finishObserver) JobFinished(ev *sidekiq.JobEvent) { o.f(ev) }

// hex32 and hex64 are digests of the gem's two algorithms (MD5, SHA3-256).
var (
	hex32 = strings.Repeat("0123456789abcdef", 2)
	hex64 = strings.Repeat("0123456789abcdef", 4)
)

// TestUniqueJobsRefusesForeignDigests runs every lock type with digests outside the gem's
// keyspace through InterceptRun (the handler failing, so every relock path runs) and
// OnDeath, and checks that the database is left exactly as it was: the job runs as an
// unlocked one.
func TestUniqueJobsRefusesForeignDigests(t *testing.T) {
	t.Parallel()
	bad := []string{
		"queue:critical", "retry", "schedule", "dead", "queues", "processes", "stat:processed",
		locks.SUJDigestsKey, locks.SUJChangelogKey, "uniquejobs:reaper", "uniquejobs:expiring_digests",
		"uniquejobs:", "uniquejobs:" + hex32[:31], "uniquejobs:" + hex32 + "0", "uniquejobs:" + strings.ToUpper(hex32),
		"uniquejobs:" + hex32 + ":LOCKED", "uniquejobs:" + hex32 + ":RUN:RUN", "uniquejobs:" + hex32 + "\n",
		"uniquejobs:" + hex32[:30] + "zz", "other:" + hex32, ":" + hex32, hex32, "app:uniquejobs:" + hex32,
		"uniquejobs:" + hex64 + ":RUN:LOCKED", "uniquejobs:" + hex64 + "*", " uniquejobs:" + hex32,
	}
	types := []string{locks.SUJUntilExecuting, locks.SUJUntilExecuted, locks.SUJWhileExecuting, locks.SUJUntilAndWhileExecuting, locks.SUJUntilExpired}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		seedSidekiqKeys(t, rdb, "")
		before := snapshot(t, rdb)
		core, logs := observer.New(zap.WarnLevel)
		u := locks.UniqueJobs(rdb, locks.UniqueLogger(zap.New(core)))
		for _, field := range []string{"lock_digest", "unique_digest"} {
			for _, typ := range types {
				for _, d := range bad {
					payload := fmt.Sprintf(`{"class":"X","jid":"evil","args":[],"retry":0,"lock":%q,%q:%q,"lock_ttl":60}`, typ, field, d)
					job, err := sidekiq.ParseJob([]byte(payload))
					if err != nil {
						t.Fatal(err)
					}
					ran := false
					err = u.InterceptRun(ctx, job, func(context.Context) error { ran = true; return errors.New("boom") })
					if !ran || err == nil || err.Error() != "boom" {
						t.Fatalf("%s %s %q: ran %v, err %v; want the handler run as an unlocked job", field, typ, d, ran, err)
					}
					u.OnDeath(ctx, job, err)
					if changes := diff(before, snapshot(t, rdb)); len(changes) > 0 {
						t.Fatalf("%s %s %q changed the database: %v", field, typ, d, changes)
					}
				}
			}
		}
		for _, d := range bad {
			if ok, err := u.Unlock(ctx, d, "evil"); ok || !errors.Is(err, locks.ErrInvalidDigest) {
				t.Errorf("Unlock(%q) = %v, %v; want false, ErrInvalidDigest", d, ok, err)
			}
		}
		if changes := diff(before, snapshot(t, rdb)); len(changes) > 0 {
			t.Fatalf("Unlock changed the database: %v", changes)
		}
		// One warning per field (a distinct reason), not one per job.
		if got := logs.FilterMessageSnippet("outside").Len(); got != 2 {
			t.Errorf("%d warnings, want 2 (one per field): %v", got, logs.All())
		}
	})
}

// TestUniqueJobsAcceptsGemDigests checks the digests the gem writes are still honoured:
// MD5 (legacy) and SHA3-256 (modern) hex, the :RUN suffix the gem's while_executing
// leaves in a payload, and a lock_prefix configured with UniqueLockPrefix.
func TestUniqueJobsAcceptsGemDigests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		digest string
		opts   []locks.UniqueOption
	}{
		{name: "md5", digest: "uniquejobs:" + hex32},
		{name: "sha3-256", digest: "uniquejobs:" + hex64},
		{name: "runtime suffix", digest: "uniquejobs:" + hex32 + ":RUN"},
		{name: "configured prefix", digest: "myapp:" + hex64, opts: []locks.UniqueOption{locks.UniqueLockPrefix("myapp")}},
	}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				const jid = "abcabcabcabcabcabcabcabc"
				rdb.Set(ctx, tc.digest, jid, 0)
				rdb.HSet(ctx, tc.digest+":LOCKED", jid, "1796000000.5")
				u := locks.UniqueJobs(rdb, tc.opts...)
				job, err := sidekiq.ParseJob([]byte(fmt.Sprintf(`{"class":"X","jid":%q,"args":[],"lock":"until_executed","lock_digest":%q}`, jid, tc.digest)))
				if err != nil {
					t.Fatal(err)
				}
				if err := u.InterceptRun(ctx, job, func(context.Context) error { return nil }); err != nil {
					t.Fatal(err)
				}
				if n := rdb.Exists(ctx, tc.digest, tc.digest+":LOCKED").Val(); n != 0 {
					t.Fatalf("lock %s not released (%d keys left)", tc.digest, n)
				}
			})
		}
	})
}

// TestQueueLockPayloadKeyCannotNameOtherKeys: a payload's PayloadKey ("ferry_queue_lock")
// is released at start, kept over a reschedule, and extended by a contended worker lock.
// On the unfixed locks each of those ran on whatever key the payload named: a string key
// holding the job's jid was deleted, a missing key was created as a string (so Sidekiq's
// next ZADD on it failed), a list made the job fail with WRONGTYPE. Now a key that is not
// "ferry:lock:queue:<64 hex>" counts as absent: the job gets the key its inputs give, or
// none when the lock does not apply to its class.
func TestQueueLockPayloadKeyCannotNameOtherKeys(t *testing.T) {
	t.Parallel()
	bad := []string{
		"stat:processed", "queue:critical", "retry", "dead", "schedule", "queues",
		locks.QueueKeyPrefix + hex64[:63], locks.QueueKeyPrefix + hex64 + "0", locks.QueueKeyPrefix + strings.ToUpper(hex64),
		locks.WorkerKeyPrefix + hex64, locks.QueueKeyPrefix, "app:" + locks.QueueKeyPrefix + hex64,
	}
	later := sidekiq.RetryIn(time.Minute, errors.New("a later middleware reschedules"))
	flows := []struct {
		name  string
		after []sidekiq.RunMiddleware // run after the queue lock, before the handler
	}{
		{name: "started"},
		{name: "rescheduled before start", after: []sidekiq.RunMiddleware{endRun{err: later}}},
		{name: "failed before start", after: []sidekiq.RunMiddleware{endRun{err: errors.New("boom")}}},
	}
	noop := sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return nil })
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		seedSidekiqKeys(t, rdb, "")
		before := snapshot(t, rdb)
		core, logs := observer.New(zap.WarnLevel)
		log := zap.New(core)
		// The lock applies to another class: no key may change at all.
		q := locks.QueueLock(rdb, locks.Classes("Other"), locks.Logger(log))
		w := locks.WorkerLock(rdb, locks.Logger(log))
		for _, key := range bad {
			payload := fmt.Sprintf(`{"class":"Report","jid":"evil","args":[{"user_id":1}],%q:%q}`, locks.PayloadKey, key)
			for _, f := range flows {
				job, err := sidekiq.ParseJob([]byte(payload))
				if err != nil {
					t.Fatal(err)
				}
				_ = sidekiq.Perform(ctx, noop, job, append([]sidekiq.RunMiddleware{q}, f.after...)...)
				if changes := diff(before, snapshot(t, rdb)); len(changes) > 0 {
					t.Fatalf("queue lock, %s, %s %q changed the database: %v", f.name, locks.PayloadKey, key, changes)
				}
			}
			// A contended worker lock extends the payload's queue lock key.
			job, err := sidekiq.ParseJob([]byte(payload))
			if err != nil {
				t.Fatal(err)
			}
			wkey, err := w.KeyFor(job)
			if err != nil {
				t.Fatal(err)
			}
			rdb.Set(ctx, wkey, "someone-else", 0)
			if err := w.InterceptRun(ctx, job, func(context.Context) error { return nil }); !errors.Is(err, locks.ErrWorkerLockHeld) {
				t.Fatalf("worker lock: %v, want ErrWorkerLockHeld", err)
			}
			rdb.Del(ctx, wkey)
			if changes := diff(before, snapshot(t, rdb)); len(changes) > 0 {
				t.Fatalf("worker lock contention with %s %q changed the database: %v", locks.PayloadKey, key, changes)
			}
		}
		if n := logs.FilterMessageSnippet(locks.PayloadKey).Len(); n != 2 {
			t.Errorf("%d warnings about %s, want 2 (once per middleware): %v", n, locks.PayloadKey, logs.All())
		}

		// Where the lock applies, the key the inputs give is used instead.
		q = locks.QueueLock(rdb)
		job, err := sidekiq.ParseJob([]byte(fmt.Sprintf(`{"class":"Report","jid":"evil","args":[{"user_id":1}],%q:"stat:processed"}`, locks.PayloadKey)))
		if err != nil {
			t.Fatal(err)
		}
		own, err := q.KeyFor(job)
		if err != nil {
			t.Fatal(err)
		}
		_ = q.InterceptRun(ctx, job, func(context.Context) error { return later })
		if v := rdb.Get(ctx, own).Val(); v != "evil" {
			t.Errorf("rescheduled job's own lock %s = %q, want its jid", own, v)
		}
		rdb.Del(ctx, own)
		if changes := diff(before, snapshot(t, rdb)); len(changes) > 0 {
			t.Fatalf("the applied queue lock changed other keys: %v", changes)
		}
	})
}

// endRun is run middleware that ends the chain with err, before the handler starts.
type endRun struct {
	sidekiq.MiddlewareDefaults
	err error
}

func (e endRun) InterceptRun(context.Context, *sidekiq.Job, func(context.Context) error) error {
	return e.err
}

// TestRubyMiddlewarePayloadCannotNameKeys: the Ruby middleware's push hook took any payload
// carrying its transient guard field as one it had marked, and ran the guarded-push script
// on the payload's ferry_queue_lock key with the payload's flags. Sidekiq's scheduler pushes
// due retry and schedule entries through Sidekiq::Client, so a payload there with both
// fields could replace any key ("x" flag) with a string. Only a push the middleware marked
// itself is guarded now; the forged one is pushed as a plain job.
func TestRubyMiddlewarePayloadCannotNameKeys(t *testing.T) {
	t.Parallel()
	r := testsuite.RealRedis(t)
	ctx := context.Background()
	seedSidekiqKeys(t, r.Client, "")
	critical := r.Client.LRange(ctx, "queue:critical", 0, -1).Val()
	for _, class := range []string{"Plain", "Report"} { // not locked, and locked (its key passes)
		testsuite.Ruby(t, r.URL, rubyLockSetup(t)+`
Sidekiq::Client.push("class" => "`+class+`", "queue" => "default", "args" => [{"user_id" => 1}],
  "ferry_queue_lock" => "queue:critical", "ferry_queue_lock_guard" => [600000, "rx"])
`)
	}
	if typ := r.Client.Type(ctx, "queue:critical").Val(); typ != "list" {
		t.Fatalf("queue:critical is a %s now, want the list it was", typ)
	}
	if got := r.Client.LRange(ctx, "queue:critical", 0, -1).Val(); strings.Join(got, "\n") != strings.Join(critical, "\n") {
		t.Fatalf("queue:critical = %v, want %v", got, critical)
	}
	if n := r.Client.LLen(ctx, "queue:default").Val(); n != 2 {
		t.Fatalf("%d jobs in queue:default, want both forged payloads pushed as plain jobs", n)
	}
}
