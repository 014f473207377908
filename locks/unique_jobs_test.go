package locks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

// sujFixture is testdata/suj_v8_until_executed.json: a payload pushed with
// sidekiq-unique-jobs and the keys the gem wrote for it.
type sujFixture struct {
	Payload   json.RawMessage               `json:"payload"`
	Strings   map[string]string             `json:"strings"`
	Hashes    map[string]map[string]string  `json:"hashes"`
	Zsets     map[string]map[string]float64 `json:"zsets"`
	LockKeys  []string                      `json:"lock_keys"`
	OtherKeys []string                      `json:"other_keys"`
}

const (
	sujJID    = "2f1a7c3e9b8d4c5a6e7f8091"
	sujDigest = "uniquejobs:f98e6fdd7b0d9028fadc667da4d81fe9"
	sujOther  = "uniquejobs:0123456789abcdef0123456789abcdef"
)

// loadSUJ writes the fixture's keys under namespace ns and returns the payload after edit.
func loadSUJ(t *testing.T, rdb redis.UniversalClient, ns string, edit func(map[string]any)) []byte {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/suj_v8_until_executed.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx sujFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	p := ""
	if ns != "" {
		p = ns + ":"
	}
	for k, v := range fx.Strings {
		rdb.Set(ctx, p+k, v, 0)
	}
	for k, h := range fx.Hashes {
		for f, v := range h {
			rdb.HSet(ctx, p+k, f, v)
		}
	}
	for k, z := range fx.Zsets {
		for m, s := range z {
			if k == locks.SUJDigestsKey {
				m = p + m // the gem's Lua adds its KEYS[1], namespaced like every key
			}
			rdb.ZAdd(ctx, p+k, redis.Z{Score: s, Member: m})
		}
	}
	dec := json.NewDecoder(bytes.NewReader(fx.Payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sujHeld reports whether the fixture's lock is still in place: digest, LOCKED entry and
// digests member all present (true), or all gone (false); a mix fails the test.
func sujHeld(t *testing.T, rdb redis.UniversalClient, ns, digest, jid string) bool {
	t.Helper()
	ctx := context.Background()
	p := ""
	if ns != "" {
		p = ns + ":"
	}
	d := p + digest
	// Read in one MULTI/EXEC, so a concurrent unlock is seen entirely or not at all.
	var get *redis.StringCmd
	var hexists *redis.BoolCmd
	var zscore *redis.FloatCmd
	var exists *redis.IntCmd
	if _, err := rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		get = pl.Get(ctx, d)
		hexists = pl.HExists(ctx, d+":LOCKED", jid)
		zscore = pl.ZScore(ctx, p+locks.SUJDigestsKey, d)
		exists = pl.Exists(ctx, d+":LOCKED", d+":INFO", d+":PRIMED")
		return nil
	}); err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	holder, locked, listed, left := get.Val(), hexists.Val(), zscore.Err() == nil, exists.Val()
	switch {
	case holder == jid && locked && listed:
		return true
	case holder == "" && !locked && !listed && left == 0:
		return false
	}
	t.Fatalf("lock %s half there: holder %q, LOCKED has %s: %v, in digests: %v, keys left: %d",
		digest, holder, jid, locked, listed, left)
	return false
}

func setField(k string, v any) func(map[string]any) {
	return func(m map[string]any) {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
}

func TestUniqueJobsLifecycle(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name       string
		edits      []func(map[string]any)
		handlerErr error
		wantRun    bool
		heldDuring bool  // lock in place while the handler runs
		heldAfter  bool  // lock in place after the middleware returns
		wantErr    error // matched with errors.Is
	}{
		{name: "until_executed: released after success", wantRun: true, heldDuring: true, heldAfter: false},
		{name: "until_executed: kept when the handler fails", handlerErr: boom, wantRun: true, heldDuring: true, heldAfter: true, wantErr: boom},
		{name: "until_executing: released before the handler", edits: []func(map[string]any){setField("lock", "until_executing")}, wantRun: true, heldDuring: false, heldAfter: false},
		{name: "until_executing: taken back when the handler fails", edits: []func(map[string]any){setField("lock", "until_executing")}, handlerErr: boom, wantRun: true, heldDuring: false, heldAfter: true, wantErr: boom},
		{name: "until_expired: left to its TTL", edits: []func(map[string]any){setField("lock", "until_expired")}, wantRun: true, heldDuring: true, heldAfter: true},
		{name: "legacy unique_digest", edits: []func(map[string]any){setField("lock_digest", nil), setField("unique_digest", sujDigest)}, wantRun: true, heldDuring: true, heldAfter: false},
		{name: "unknown lock type is refused", edits: []func(map[string]any){setField("lock", "until_the_cows")}, heldAfter: true, wantErr: locks.ErrUnsupportedLock},
		{name: "no lock field: runs untouched", edits: []func(map[string]any){setField("lock", nil)}, wantRun: true, heldDuring: true, heldAfter: true},
		{name: "malformed lock_digest: runs untouched", edits: []func(map[string]any){setField("lock_digest", 12)}, wantRun: true, heldDuring: true, heldAfter: true},
		{name: "malformed lock: runs untouched", edits: []func(map[string]any){setField("lock", []any{1})}, wantRun: true, heldDuring: true, heldAfter: true},
	}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				ns := "suj" + string(rune('a'+i))
				payload := loadSUJ(t, rdb, ns, func(m map[string]any) {
					for _, e := range tc.edits {
						e(m)
					}
				})
				job, err := sidekiq.ParseJob(payload)
				if err != nil {
					t.Fatal(err)
				}
				u := locks.UniqueJobs(rdb, locks.UniqueRedisNamespace(ns))
				ran, heldDuring := false, false
				err = u.InterceptRun(ctx, job, func(context.Context) error {
					ran = true
					heldDuring = sujHeld(t, rdb, ns, sujDigest, sujJID)
					return tc.handlerErr
				})
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Errorf("InterceptRun error = %v, want %v", err, tc.wantErr)
				}
				if ran != tc.wantRun {
					t.Fatalf("handler ran = %v, want %v", ran, tc.wantRun)
				}
				if ran && heldDuring != tc.heldDuring {
					t.Errorf("lock held while the handler ran = %v, want %v", heldDuring, tc.heldDuring)
				}
				if got := sujHeld(t, rdb, ns, sujDigest, sujJID); got != tc.heldAfter {
					t.Errorf("lock held after the run = %v, want %v", got, tc.heldAfter)
				}
				if !sujHeld(t, rdb, ns, sujOther, strings.Repeat("a", 24)) {
					t.Error("an unrelated lock was touched")
				}
			})
		}
	})
}

func TestUniqueJobsLeavesOtherHoldersAlone(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for _, typ := range []string{"until_executed", "until_executing"} {
			t.Run(typ, func(t *testing.T) {
				ctx := context.Background()
				ns := "other-" + typ
				payload := loadSUJ(t, rdb, ns, func(m map[string]any) {
					m["lock"] = typ
					m["jid"] = "ffffffffffffffffffffffff"
				})
				job, err := sidekiq.ParseJob(payload)
				if err != nil {
					t.Fatal(err)
				}
				ran := false
				u := locks.UniqueJobs(rdb, locks.UniqueRedisNamespace(ns))
				if err := u.InterceptRun(ctx, job, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
					t.Fatalf("run: ran %v, err %v; want the job to run", ran, err)
				}
				if !sujHeld(t, rdb, ns, sujDigest, sujJID) {
					t.Fatal("a job with another jid released the holder's lock")
				}
				if ok, err := u.Unlock(ctx, sujDigest, "ffffffffffffffffffffffff"); ok || err != nil {
					t.Fatalf("Unlock by a non-holder = %v, %v; want false, nil", ok, err)
				}
			})
		}
	})
}

func TestUniqueJobsUnlockWritesWhatTheGemWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testsuite.RealRedis(t)
	loadSUJ(t, r.Client, "", nil)
	u := locks.UniqueJobs(r.Client)
	if ok, err := u.Unlock(ctx, sujDigest, sujJID); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
	// The gem's waiters are woken by a "1" on QUEUED that expires within 5 s.
	if v := r.Client.LRange(ctx, sujDigest+":QUEUED", 0, -1).Val(); len(v) != 1 || v[0] != "1" {
		t.Errorf("QUEUED = %v, want [1]", v)
	}
	if ttl := r.Client.PTTL(ctx, sujDigest+":QUEUED").Val(); ttl <= 0 || ttl > 5*time.Second {
		t.Errorf("QUEUED PTTL = %v, want (0, 5s]", ttl)
	}
	entries := r.Client.ZRange(ctx, locks.SUJChangelogKey, 0, -1).Val()
	var last map[string]any
	if len(entries) != 2 || json.Unmarshal([]byte(entries[1]), &last) != nil {
		t.Fatalf("changelog = %v, want the gem's entry and an unlock entry", entries)
	}
	if last["digest"] != sujDigest || last["job_id"] != sujJID || last["message"] != "Unlocked" {
		t.Errorf("changelog entry = %v", last)
	}
	// Unlocking again is a no-op.
	if ok, err := u.Unlock(ctx, sujDigest, sujJID); ok || err != nil {
		t.Fatalf("second Unlock = %v, %v; want false, nil", ok, err)
	}
}

// TestGoServerRunsSUJJob runs the Ruby payload through a real Go Server: a successful
// run releases the gem's lock; a failing one keeps it while the job waits in the retry
// set; a job that dies releases it through OnDeath.
func TestGoServerRunsSUJJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		edit      func(map[string]any)
		fail      bool
		heldAfter bool
		waitFor   string // "done" (handler returned and lock state settled), "retry", "dead"
	}{
		{name: "success releases", heldAfter: false, waitFor: "done"},
		{name: "failure keeps the lock through the retry", fail: true, heldAfter: true, waitFor: "retry"},
		{name: "death releases via OnDeath", edit: setField("retry", 0), fail: true, heldAfter: false, waitFor: "dead"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := testsuite.RealRedis(t)
			payload := loadSUJ(t, r.Client, "", tc.edit)
			u := locks.UniqueJobs(r.Client)
			srv := sidekiq.NewServer(r.Client, &sidekiq.Config{Concurrency: 1, FetchTimeout: 50 * time.Millisecond,
				PollInterval: 20 * time.Millisecond, OnDeath: u.OnDeath})
			srv.Use(u)
			ran := make(chan struct{}, 1)
			srv.Handle("ReportWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
				ran <- struct{}{}
				if tc.fail {
					return errors.New("boom")
				}
				return nil
			}))
			r.Client.SAdd(ctx, "queues", "default")
			r.Client.LPush(ctx, "queue:default", payload)
			if err := srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stopServer(t, srv) })
			receive(t, ran, "the SUJ job to run")
			deadline := time.Now().Add(15 * time.Second)
			for {
				var settled bool
				switch tc.waitFor {
				case "retry":
					settled = r.Client.ZCard(ctx, "retry").Val() == 1
				case "dead":
					settled = r.Client.ZCard(ctx, "dead").Val() == 1 && !sujHeld(t, r.Client, "", sujDigest, sujJID)
				default:
					settled = !sujHeld(t, r.Client, "", sujDigest, sujJID)
				}
				if settled {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("timed out waiting for %s", tc.waitFor)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := sujHeld(t, r.Client, "", sujDigest, sujJID); got != tc.heldAfter {
				t.Errorf("lock held = %v, want %v", got, tc.heldAfter)
			}
			if !sujHeld(t, r.Client, "", sujOther, strings.Repeat("a", 24)) {
				t.Error("an unrelated lock was touched")
			}
		})
	}
}

func stopServer(t *testing.T, srv *sidekiq.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// TestSUJReaperSeesGoJob checks what the gem's orphan reaper looks for before it deletes a
// lock: while a Go Server runs a locked job, the job is in "<identity>:work" of a process
// listed in "processes", and that entry's text contains the lock digest (the reaper's
// string.find; semantics §2.6, §9 item 14).
func TestSUJReaperSeesGoJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testsuite.RealRedis(t)
	payload := loadSUJ(t, r.Client, "", nil)
	u := locks.UniqueJobs(r.Client)
	srv := sidekiq.NewServer(r.Client, &sidekiq.Config{Concurrency: 1, FetchTimeout: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	srv.Use(u)
	started, release := make(chan struct{}, 1), make(chan struct{})
	srv.Handle("ReportWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		started <- struct{}{}
		<-release
		return nil
	}))
	r.Client.LPush(ctx, "queue:default", payload)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServer(t, srv) })
	receive(t, started, "the SUJ job to start")
	defer close(release)
	deadline := time.Now().Add(15 * time.Second)
	for {
		listed := r.Client.SIsMember(ctx, "processes", srv.Identity()).Val()
		var found bool
		for _, v := range r.Client.HGetAll(ctx, srv.Identity()+":work").Val() {
			found = found || strings.Contains(v, sujDigest)
		}
		if listed && found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process listed %v, running job with %s in %s:work %v", listed, sujDigest, srv.Identity(), found)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sujHeld(t, r.Client, "", sujDigest, sujJID) {
		t.Fatal("until_executed lock released while the job runs")
	}
}

func TestUniqueJobsRuntimeLock(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	const other = "cccccccccccccccccccccccc"
	run := sujDigest + ":RUN"
	tests := []struct {
		name         string
		lock         string
		runHeldBy    string // jid holding the runtime lock before the job starts
		handlerErr   error
		wantRun      bool
		clientDuring bool // the client lock (fixture digest) held while the handler runs
		clientAfter  bool
		wantErr      []error
	}{
		{name: "while_executing holds :RUN while running", lock: "while_executing", wantRun: true, clientDuring: true, clientAfter: true},
		{name: "while_executing releases :RUN when the handler fails", lock: "while_executing", handlerErr: boom, wantRun: true, clientDuring: true, clientAfter: true, wantErr: []error{boom}},
		{name: "while_executing contended: rescheduled, not run, not dropped", lock: "while_executing", runHeldBy: other, clientAfter: true, wantErr: []error{locks.ErrRunLockHeld, sidekiq.ErrRetryIn}},
		{name: "until_and_while_executing: client lock released, :RUN held", lock: "until_and_while_executing", wantRun: true, clientDuring: false, clientAfter: false},
		{name: "until_and_while_executing failure takes the client lock back", lock: "until_and_while_executing", handlerErr: boom, wantRun: true, clientAfter: true, wantErr: []error{boom}},
		{name: "until_and_while_executing contended keeps the client lock and reschedules", lock: "until_and_while_executing", runHeldBy: other, clientAfter: true, wantErr: []error{locks.ErrRunLockHeld, sidekiq.ErrRetryIn}},
	}
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				ns := "run" + string(rune('a'+i))
				job, err := sidekiq.ParseJob(loadSUJ(t, rdb, ns, setField("lock", tc.lock)))
				if err != nil {
					t.Fatal(err)
				}
				if tc.runHeldBy != "" {
					rdb.Set(ctx, ns+":"+run, tc.runHeldBy, 0)
					rdb.HSet(ctx, ns+":"+run+":LOCKED", tc.runHeldBy, "1796000000.5")
					rdb.ZAdd(ctx, ns+":"+locks.SUJDigestsKey, redis.Z{Score: 1796000000.5, Member: ns + ":" + run})
				}
				u := locks.UniqueJobs(rdb, locks.UniqueRedisNamespace(ns))
				ran, clientDuring, runDuring := false, false, false
				var runTTL time.Duration
				err = u.InterceptRun(ctx, job, func(context.Context) error {
					ran = true
					clientDuring = sujHeld(t, rdb, ns, sujDigest, sujJID)
					runDuring = sujHeld(t, rdb, ns, run, sujJID)
					runTTL = rdb.PTTL(ctx, ns+":"+run).Val()
					return tc.handlerErr
				})
				for _, want := range tc.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("error %v does not match %v", err, want)
					}
				}
				if len(tc.wantErr) == 0 && err != nil {
					t.Errorf("error %v, want nil", err)
				}
				if ran != tc.wantRun {
					t.Fatalf("handler ran = %v, want %v", ran, tc.wantRun)
				}
				if ran {
					if !runDuring || runTTL <= 0 || runTTL > locks.DefaultSUJRunLease {
						t.Errorf(":RUN held while running = %v with PTTL %v; want held with a TTL of at most the lease", runDuring, runTTL)
					}
					if clientDuring != tc.clientDuring {
						t.Errorf("client lock held while running = %v, want %v", clientDuring, tc.clientDuring)
					}
				}
				if got := sujHeld(t, rdb, ns, sujDigest, sujJID); got != tc.clientAfter {
					t.Errorf("client lock held after = %v, want %v", got, tc.clientAfter)
				}
				if tc.runHeldBy != "" {
					if !sujHeld(t, rdb, ns, run, tc.runHeldBy) {
						t.Error("the other job's runtime lock was touched")
					}
				} else if sujHeld(t, rdb, ns, run, sujJID) {
					t.Error(":RUN still held after the run")
				}
			})
		}
	})
}

// TestUniqueJobsRuntimeLockRenewed runs a job for several lease lengths and checks that
// its runtime lock never lapses meanwhile.
func TestUniqueJobsRuntimeLockRenewed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testsuite.RealRedis(t)
	job, err := sidekiq.ParseJob(loadSUJ(t, r.Client, "", setField("lock", "while_executing")))
	if err != nil {
		t.Fatal(err)
	}
	const lease = 150 * time.Millisecond
	run := sujDigest + ":RUN"
	u := locks.UniqueJobs(r.Client, locks.UniqueRunLease(lease))
	checks := 0
	err = u.InterceptRun(ctx, job, func(context.Context) error {
		// Watch the lock until four leases have gone by.
		for end := time.Now().Add(4 * lease); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if !r.Client.HExists(ctx, run+":LOCKED", sujJID).Val() {
				return fmt.Errorf("runtime lock lapsed after %d checks", checks)
			}
			checks++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sujHeld(t, r.Client, "", run, sujJID) {
		t.Fatal(":RUN still held after the run")
	}
}
