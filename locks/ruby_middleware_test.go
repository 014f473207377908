package locks_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

const rubyMiddlewareFile = "ruby/ferry_queue_lock.rb"

func TestRubyMiddlewareCarriesGoConstants(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(rubyMiddlewareFile)
	if err != nil {
		t.Fatal(err)
	}
	// The Lua itself is compared with the core's by sidekiq's TestRubyQueueLockCarriesGuardedPushLua.
	text := string(src)
	for _, want := range []string{
		`PAYLOAD_KEY = "` + locks.PayloadKey + `"`,
		`KEY_PREFIX = "` + locks.QueueKeyPrefix + `"`,
		`DEFAULT_TTL = ` + strconv.Itoa(int(locks.DefaultTTL/time.Second)),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q", rubyMiddlewareFile, want)
		}
	}
}

// rubyLockSetup loads the shipped middleware and declares the job classes the tests push.
func rubyLockSetup(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(rubyMiddlewareFile)
	if err != nil {
		t.Fatal(err)
	}
	return `
require ` + testsuite.RubyString(abs) + `
Sidekiq.configure_client do |c|
  c.client_middleware do |ch|
    ch.add FerryQueueLock, classes: {
      "Report" => {inputs: %w[user_id]},
      "Audit" => {},
      "Shared1" => {namespace: "shared", inputs: ["id"]},
      "Shared2" => {namespace: "shared", inputs: ["id"]},
      "Strict" => {on_conflict: :raise},
      "Later" => {ttl: 60},
      "Taker" => {on_conflict: "replace"},
    }
  end
end
# ferry_enqueue_due runs one pass of Sidekiq's own scheduler (7.0+ hand it the configuration).
def ferry_enqueue_due
  require "sidekiq/scheduled"
  enq = FERRY_SIDEKIQ_MAJOR >= 7 ? Sidekiq::Scheduled::Enq.new(Sidekiq.default_configuration) : Sidekiq::Scheduled::Enq.new
  enq.enqueue_jobs
end
%w[Report Audit Shared1 Shared2 Strict Later Taker Plain].each do |n|
  Object.const_set(n, Class.new { include Sidekiq::Worker })
end
`
}

// rubyJIDs runs body (which must leave an Array of jids in `out`) with the release sk and
// returns them.
func rubyJIDs(t *testing.T, sk *testsuite.RubySidekiq, url, body string) []string {
	t.Helper()
	out := sk.Ruby(t, url, rubyLockSetup(t)+"out = []\n"+body+"\nputs JSON.generate(out)\n")
	var jids []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &jids); err != nil {
		t.Fatalf("ruby output %q: %v", out, err)
	}
	return jids
}

func TestRubyMiddlewareCollapses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		jobs  int      // jobs left in queue:default
		same  [][2]int // pairs of out indexes that must be the same jid
		diff  [][2]int // pairs that must differ
		class string   // class whose key is checked to hold out[0]
		in    string   // its args[0]
		want  map[int]string
	}{
		{
			name:  "three identical pushes make one job",
			body:  `3.times { out << Report.perform_async("user_id" => 7, "note" => "x") }`,
			jobs:  1,
			same:  [][2]int{{0, 1}, {0, 2}},
			class: "Report", in: `{"user_id":7}`,
		},
		{
			name:  "inputs outside the chosen names do not matter",
			body:  `out << Report.perform_async("user_id" => 7, "note" => "a"); out << Report.perform_async("user_id" => 7, "note" => "b")`,
			jobs:  1,
			same:  [][2]int{{0, 1}},
			class: "Report", in: `{"user_id":7}`,
		},
		{
			name: "different inputs make separate jobs",
			body: `out << Report.perform_async("user_id" => 7); out << Report.perform_async("user_id" => 8); out << Report.perform_async("user_id" => "7")`,
			jobs: 3,
			diff: [][2]int{{0, 1}, {0, 2}, {1, 2}},
		},
		{
			name: "different classes make separate jobs",
			body: `out << Audit.perform_async("id" => 1); out << Shared1.perform_async("id" => 1); out << Plain.perform_async("id" => 1); out << Plain.perform_async("id" => 1)`,
			jobs: 4,
			diff: [][2]int{{0, 1}, {2, 3}},
		},
		{
			name: "a shared namespace collapses across classes",
			body: `out << Shared1.perform_async("id" => 1); out << Shared2.perform_async("id" => 1)`,
			jobs: 1,
			same: [][2]int{{0, 1}},
		},
		{
			name: "locale and tz are left out by default",
			// Symbol keys are strict args: 7.0+ raise unless the app turned the check off.
			body:  `Sidekiq.strict_args!(false); out << Audit.perform_async(id: 1, locale: "fr", tz: "Europe/Paris"); out << Audit.perform_async("id" => 1, "locale" => "de")`,
			jobs:  1,
			same:  [][2]int{{0, 1}},
			class: "Audit", in: `{"id":1}`,
		},
		{
			name: "push_bulk collapses within the batch",
			body: `out.concat(Sidekiq::Client.push_bulk("class" => "Audit", "args" => [[{"id" => 1}], [{"id" => 1}], [{"id" => 2}]]))`,
			jobs: 2,
			same: [][2]int{{0, 1}},
			diff: [][2]int{{0, 2}},
		},
		{
			name: "Sidekiq's scheduler promotes a locked job past its own lock",
			body: `out << Audit.perform_in(600, "id" => 1)
Sidekiq.redis { |c| c.zadd("schedule", Time.now.to_f - 1, c.zrange("schedule", 0, 0)[0]) }
ferry_enqueue_due
out << Audit.perform_async("id" => 1)`,
			jobs:  1,
			same:  [][2]int{{0, 1}},
			class: "Audit", in: `{"id":1}`,
		},
		{
			name: "a retry promoted while an identical job waits is not dropped",
			body: `out << Audit.perform_async("id" => 1)
retried = {"class" => "Audit", "queue" => "default", "args" => [{"id" => 1}], "jid" => "b" * 24,
  "retry" => true, "retry_count" => 0, "ferry_queue_lock" => FerryQueueLock.key("Audit", {"id" => 1})}
Sidekiq.redis { |c| c.zadd("retry", Time.now.to_f - 1, JSON.generate(retried)) }
ferry_enqueue_due
out << "b" * 24`,
			jobs:  2,
			diff:  [][2]int{{0, 1}},
			class: "Audit", in: `{"id":1}`,
		},
		{
			name: "on_conflict replace takes the lock over and pushes",
			body: `out << Taker.perform_async("id" => 1); out << Taker.perform_async("id" => 1)
out << Sidekiq.redis { |c| c.get(FerryQueueLock.key("Taker", {"id" => 1})) }`,
			jobs: 2,
			same: [][2]int{{1, 2}},
			diff: [][2]int{{0, 1}},
		},
		{
			name: "positional args raise FerryQueueLock::Error and push nothing",
			body: `begin
  Audit.perform_async(1, 2)
  out << "pushed"
rescue FerryQueueLock::Error => e
  out << e.class.name
end`,
			jobs: 0,
			want: map[int]string{0: "FerryQueueLock::Error"},
		},
		{
			name: "Sidekiq::Testing fake mode: no lock, no Redis, Sidekiq's own fake queue",
			body: `require "sidekiq/testing"
Sidekiq::Testing.fake! do
  2.times { Report.perform_async("user_id" => 7) }
  out << Report.jobs.size.to_s
  out << Report.jobs.map(&:keys).flatten.grep(/ferry/).size.to_s
end
out << Sidekiq.redis { |c| c.keys("*").size.to_s }`,
			jobs: 0,
			want: map[int]string{0: "2", 1: "0", 2: "0"},
		},
		{
			name: "on_conflict raise raises LockedError",
			body: `out << Strict.perform_async("id" => 1)
begin
  Strict.perform_async("id" => 1)
  out << "no error"
rescue FerryQueueLock::LockedError => e
  out << e.holder
end`,
			jobs: 1,
			same: [][2]int{{0, 1}},
		},
	}
	testsuite.ForEachSidekiq(t, func(t *testing.T, sk *testsuite.RubySidekiq) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				r := testsuite.RealRedis(t)
				jids := rubyJIDs(t, sk, r.URL, tc.body)
				jobs, err := testutil.Enqueued(ctx, r.Client, "", "default")
				if err != nil {
					t.Fatal(err)
				}
				if len(jobs) != tc.jobs {
					t.Errorf("%d jobs in queue:default, want %d (jids %v)", len(jobs), tc.jobs, jids)
				}
				for _, p := range tc.same {
					if jids[p[0]] == "" || jids[p[0]] != jids[p[1]] {
						t.Errorf("jids %d and %d: %q, %q; want the same", p[0], p[1], jids[p[0]], jids[p[1]])
					}
				}
				for i, w := range tc.want {
					if jids[i] != w {
						t.Errorf("out[%d] = %q, want %q", i, jids[i], w)
					}
				}
				for _, p := range tc.diff {
					if jids[p[0]] == jids[p[1]] {
						t.Errorf("jids %d and %d are both %q; want different", p[0], p[1], jids[p[0]])
					}
				}
				for _, j := range jobs {
					if _, ok := j.Extra["ferry_queue_lock_guard"]; ok {
						t.Errorf("job %s carries the transient guard field: %s", j.JID, j.Raw())
					}
				}
				if tc.class != "" {
					key := lockKey(t, tc.class, tc.in)
					if v, err := r.Client.Get(ctx, key).Result(); err != nil || v != jids[0] {
						t.Errorf("lock %s holds %q (%v), want %q", key, v, err, jids[0])
					}
					if jobs[0].JID != jids[0] {
						t.Fatalf("queued job %s, want %s", jobs[0].JID, jids[0])
					}
					var recorded string
					if _, err := jobs[0].Get(locks.PayloadKey, &recorded); err != nil || recorded != key {
						t.Errorf("payload %s = %q (%v), want %q", locks.PayloadKey, recorded, err, key)
					}
				}
			})
		}
	})
}

func TestRubyAndGoShareTheLock(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyAndGoShareTheLock)
}

func testRubyAndGoShareTheLock(t *testing.T, sk *testsuite.RubySidekiq) {
	ctx := context.Background()
	args := []any{map[string]any{"user_id": 7}}
	t.Run("Go first, then Ruby", func(t *testing.T) {
		t.Parallel()
		r := testsuite.RealRedis(t)
		c := sidekiq.NewClient(r.Client, nil)
		c.Use(locks.QueueLock(r.Client, locks.Inputs("user_id"), locks.Classes("Report")))
		goJID, err := c.Push(ctx, "Report", args)
		if err != nil {
			t.Fatal(err)
		}
		jids := rubyJIDs(t, sk, r.URL, `out << Report.perform_async("user_id" => 7)`)
		if jids[0] != goJID {
			t.Errorf("Ruby push returned %q, want the Go job's jid %q", jids[0], goJID)
		}
		assertQueued(t, r, goJID)
	})
	t.Run("Ruby first, then Go", func(t *testing.T) {
		t.Parallel()
		r := testsuite.RealRedis(t)
		jids := rubyJIDs(t, sk, r.URL, `out << Report.perform_async("user_id" => 7)`)
		c := sidekiq.NewClient(r.Client, nil)
		c.Use(locks.QueueLock(r.Client, locks.Inputs("user_id"), locks.Classes("Report")))
		goJID, err := c.Push(ctx, "Report", args)
		if !errors.Is(err, sidekiq.ErrPushStopped) || goJID != jids[0] {
			t.Errorf("Go push: jid %q, err %v; want the Ruby job's jid %q and ErrPushStopped", goJID, err, jids[0])
		}
		assertQueued(t, r, jids[0])
	})
}

// assertQueued checks that queue:default holds exactly the job jid.
func assertQueued(t *testing.T, r *testsuite.RealRedisDB, jid string) {
	t.Helper()
	jobs, err := testutil.Enqueued(context.Background(), r.Client, "", "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].JID != jid {
		var got []string
		for _, j := range jobs {
			got = append(got, j.JID)
		}
		t.Fatalf("queue:default holds %v, want just %s", got, jid)
	}
}

func TestGoServerReleasesRubyLock(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testGoServerReleasesRubyLock)
}

func testGoServerReleasesRubyLock(t *testing.T, sk *testsuite.RubySidekiq) {
	r := testsuite.RealRedis(t)
	key := lockKey(t, "Report", `{"user_id":7}`)
	first := rubyJIDs(t, sk, r.URL, `out << Report.perform_async("user_id" => 7)`)[0]

	ran := make(chan started, 4)
	runServer(t, r.Client, "", locks.QueueLock(r.Client), "Report", func(ctx context.Context, job *sidekiq.Job) error {
		ran <- started{jid: job.JID, lockHeld: r.Client.Exists(ctx, key).Val()}
		return nil
	})
	if s := receive(t, ran, "the Ruby job to run"); s.jid != first || s.lockHeld != 0 {
		t.Fatalf("ran %s with lock present = %d; want %s with its lock released", s.jid, s.lockHeld, first)
	}
	second := rubyJIDs(t, sk, r.URL, `out << Report.perform_async("user_id" => 7)`)[0]
	if second == first {
		t.Fatalf("identical push after the run returned the old jid %s", first)
	}
	if s := receive(t, ran, "the second Ruby job to run"); s.jid != second {
		t.Fatalf("ran %s, want %s", s.jid, second)
	}
}

func TestRubyScheduledPushLock(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyScheduledPushLock)
}

func testRubyScheduledPushLock(t *testing.T, sk *testsuite.RubySidekiq) {
	ctx := context.Background()
	r := testsuite.RealRedis(t)
	key := lockKey(t, "Later", `{"id":1}`)
	// Later has a 60 s TTL; the push is due in 30 s, so the lock must outlive 60 s.
	jids := rubyJIDs(t, sk, r.URL, `
out << Later.perform_in(30, "id" => 1)
out << Later.perform_async("id" => 1)
out << Sidekiq.redis { |c| c.pttl(`+testsuite.RubyString(key)+`) }.to_s`)
	jid := jids[0]
	if jids[1] != jid {
		t.Errorf("push during the delay returned %q, want the scheduled job %q", jids[1], jid)
	}
	if pttl, err := strconv.Atoi(jids[2]); err != nil || pttl <= 60000 || pttl > 90000 {
		t.Errorf("lock PTTL = %d ms, want between 60 s (TTL) and 90 s (TTL + delay)", pttl)
	}
	if n := r.Client.ZCard(ctx, "schedule").Val(); n != 1 {
		t.Fatalf("schedule holds %d jobs, want 1", n)
	}
	if n := r.Client.LLen(ctx, "queue:default").Val(); n != 0 {
		t.Fatalf("queue:default holds %d jobs, want 0", n)
	}
	// Bring the job due now, as time passing would, and let the Go scheduler promote it.
	member := r.Client.ZRange(ctx, "schedule", 0, 0).Val()[0]
	r.Client.ZAdd(ctx, "schedule", redis.Z{Score: float64(time.Now().Unix() - 1), Member: member})

	ran := make(chan started, 2)
	runServer(t, r.Client, "", locks.QueueLock(r.Client), "Later", func(ctx context.Context, job *sidekiq.Job) error {
		ran <- started{jid: job.JID, lockHeld: r.Client.Exists(ctx, key).Val()}
		return nil
	})
	if s := receive(t, ran, "the scheduled Ruby job to run"); s.jid != jid || s.lockHeld != 0 {
		t.Fatalf("ran %s with lock present = %d; want %s with its lock released", s.jid, s.lockHeld, jid)
	}
}

// TestRubyMiddlewareInSidekiqServer installs the middleware as the README says for Sidekiq
// servers (configure_server client_middleware) and has a job performed by the sidekiq
// binary push the same locked job twice: one job is queued, holding the lock.
func TestRubyMiddlewareInSidekiqServer(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyMiddlewareInSidekiqServer)
}

func testRubyMiddlewareInSidekiqServer(t *testing.T, sk *testsuite.RubySidekiq) {
	ctx := context.Background()
	r := testsuite.RealRedis(t)
	abs, err := filepath.Abs(rubyMiddlewareFile)
	if err != nil {
		t.Fatal(err)
	}
	jobs := `
require ` + testsuite.RubyString(abs) + `
Sidekiq.configure_server do |c|
  c.client_middleware { |ch| ch.add FerryQueueLock, classes: {"Report" => {inputs: %w[user_id]}} }
end
class Report; include Sidekiq::Worker; end
class Spawner
  include Sidekiq::Worker
  def perform
    jids = 2.times.map { Report.perform_async("user_id" => 7) }
    Sidekiq.redis { |c| c.rpush("spawned", jids) }
  end
end
`
	sk.StartSidekiq(t, r.URL, jobs, "-q", "spawn", "-c", "1")
	if _, err := sk.RunRuby(r.URL, `Sidekiq::Client.push("class" => "Spawner", "queue" => "spawn", "args" => [])`); err != nil {
		t.Fatal(err)
	}
	res, err := r.Client.BLPop(ctx, 30*time.Second, "spawned").Result()
	if err != nil {
		t.Fatalf("the Spawner job did not report: %v", err)
	}
	second := r.Client.LPop(ctx, "spawned").Val()
	if res[1] == "" || res[1] != second {
		t.Errorf("the two pushes returned %q and %q; want the same jid", res[1], second)
	}
	assertQueued(t, r, res[1])
	if v := r.Client.Get(ctx, lockKey(t, "Report", `{"user_id":7}`)).Val(); v != res[1] {
		t.Errorf("lock holds %q, want %q", v, res[1])
	}
}

// TestRubyMiddlewareKeyMatchesGo pushes awkward inputs (unicode, HTML characters, a float,
// an array, a nested object, keys out of order, locale) through the Ruby middleware and
// checks that Go computes the same key from the payload Ruby wrote.
func TestRubyMiddlewareKeyMatchesGo(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyMiddlewareKeyMatchesGo)
}

func testRubyMiddlewareKeyMatchesGo(t *testing.T, sk *testsuite.RubySidekiq) {
	ctx := context.Background()
	r := testsuite.RealRedis(t)
	jid := rubyJIDs(t, sk, r.URL, `out << Audit.perform_async("zeta" => "h\u00e9llo <a>&", "ratio" => 1.5, "tags" => ["x", 1, nil],
  "nested" => {"b" => 1, "a" => [true]}, "id" => 12345678901234, "locale" => "fr", "tz" => "UTC")`)[0]
	jobs, err := testutil.Enqueued(ctx, r.Client, "", "default")
	if err != nil || len(jobs) != 1 || jobs[0].JID != jid {
		t.Fatalf("queued %d jobs (%v), want Ruby's %s", len(jobs), err, jid)
	}
	var recorded string
	if _, err := jobs[0].Get(locks.PayloadKey, &recorded); err != nil {
		t.Fatal(err)
	}
	goKey, err := locks.QueueLock(r.Client).KeyFor(jobs[0])
	if err != nil || goKey != recorded {
		t.Fatalf("Go key %q (%v), Ruby recorded %q", goKey, err, recorded)
	}
	if v := r.Client.Get(ctx, recorded).Val(); v != jid {
		t.Fatalf("lock holds %q, want %q", v, jid)
	}
	// The same inputs pushed from Go, keys in another order and another locale, collapse.
	c := sidekiq.NewClient(r.Client, nil)
	c.Use(locks.QueueLock(r.Client, locks.Classes("Audit")))
	in := map[string]any{"id": int64(12345678901234), "nested": json.RawMessage(`{"b":1,"a":[true]}`), "tags": []any{"x", 1, nil},
		"ratio": 1.5, "zeta": "héllo <a>&", "locale": "de"}
	if got, err := c.Push(ctx, "Audit", []any{in}); got != jid || !errors.Is(err, sidekiq.ErrPushStopped) {
		t.Fatalf("Go push = %q, %v; want Ruby's %s, ErrPushStopped", got, err, jid)
	}
}
