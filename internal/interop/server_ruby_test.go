package interop

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// ranJob is what a Go handler saw of one run, copied out of the Job.
type ranJob struct {
	jid, class, queue string
	args              []byte
	tree              any
}

// TestRubyPerformAsyncRunsInGoServer: a plain Sidekiq::Worker class, defined in the Ruby
// script and never run by Ruby (its perform raises), is enqueued with perform_async; a Go
// Server with a handler for that class name runs it exactly once, with the jid Ruby
// returned, the queue from sidekiq_options, the args array byte for byte as Ruby's
// JSON.generate wrote it, and every argument decoded to the value and type Ruby holds
// (Integer beyond 2^64 exact, 3.0 a Float, nil, unicode, nested hashes). Afterwards the
// queue is empty, nothing is in the retry or dead sets, and stat:processed counts 1.
func TestRubyPerformAsyncRunsInGoServer(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyPerformAsyncRunsInGoServer)
}

func testRubyPerformAsyncRunsInGoServer(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()

	out := sk.Ruby(t, db.URL, rubyTyped+`
class GoOnlyWorker
  include Sidekiq::Worker
  sidekiq_options queue: "go_only"
  def perform(*args)
    raise "GoOnlyWorker must run in Go, never in Ruby"
  end
end
args = ["bob", 5, 2.5, 3.0, nil, true, false, 2**64 + 1, -(2**53 + 1), "ünï ☃ <&> \"q\"",
        {"nested" => [1, 2.0, {"k" => nil}], "empty" => {}}, []]
jid = GoOnlyWorker.perform_async(*args)
puts JSON.generate({"jid" => jid, "json" => JSON.generate(args), "typed" => ferry_typed(args)})
`)
	var sent struct {
		JID   string          `json:"jid"`
		JSON  string          `json:"json"`
		Typed json.RawMessage `json:"typed"`
	}
	mustUnmarshal(t, lastLine(out), &sent)

	ran := make(chan ranJob, 4)
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 2, Queues: []string{"go_only"}})
	srv.Handle("GoOnlyWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		args, err := job.ArgsSlice()
		if err != nil {
			return err
		}
		ran <- ranJob{jid: job.JID, class: job.Class, queue: job.Queue,
			args: append([]byte(nil), job.Args...), tree: fromDecoded(args)}
		return nil
	}))
	runGoServer(t, db, srv)

	var got ranJob
	select {
	case got = <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the Go server did not run the job Ruby enqueued within 10 s")
	}
	if got.jid != sent.JID || got.class != "GoOnlyWorker" || got.queue != "go_only" {
		t.Errorf("ran jid=%q class=%q queue=%q; Ruby enqueued jid=%q class GoOnlyWorker queue go_only",
			got.jid, got.class, got.queue, sent.JID)
	}
	if string(got.args) != sent.JSON {
		t.Errorf("handler's args bytes differ from Ruby's JSON.generate(args):\n got  %s\n want %s", got.args, sent.JSON)
	}
	if want := rubyTree(t, sent.Typed); !sameTree(got.tree, want) {
		t.Errorf("handler decoded args as\n %s\nRuby holds\n %s", showTree(got.tree), showTree(want))
	}
	stopGoServer(t, srv)
	select {
	case again := <-ran:
		t.Errorf("job ran twice (second run jid %s)", again.jid)
	default:
	}
	if n := db.Client.LLen(ctx, "queue:go_only").Val(); n != 0 {
		t.Errorf("queue:go_only still holds %d jobs", n)
	}
	for _, set := range []string{"retry", "dead"} {
		if n := db.Client.ZCard(ctx, set).Val(); n != 0 {
			t.Errorf("%s set holds %d jobs", set, n)
		}
	}
	if got := db.Client.Get(ctx, "stat:processed").Val(); got != "1" {
		t.Errorf("stat:processed = %q, want 1", got)
	}
}

// sharedJobsRuby is the job class of the real sidekiq processes in
// TestGoAndRubySidekiqShareAQueue: each run appends "<major> <jid>" to ferry:ran:ruby.
const sharedJobsRuby = `
class SharedJob
  include Sidekiq::Worker
  def perform(i)
    Sidekiq.redis { |c| c.rpush("ferry:ran:ruby", "#{FERRY_SIDEKIQ_MAJOR} #{jid}") }
  end
end
`

// blockedReaders counts the clients of database db blocked in cmd (for example "brpop"),
// from CLIENT LIST.
func blockedReaders(t *testing.T, db *testsuite.RealRedisDB, cmd string) int {
	t.Helper()
	list, err := db.Client.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	want := " db=" + strconv.Itoa(db.DB) + " "
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, want) && strings.Contains(line, " cmd="+cmd+" ") {
			n++
		}
	}
	return n
}

// TestGoAndRubySidekiqShareAQueue: a Go Server (concurrency 5) and each release's real sidekiq
// binary (-c 5) consume queue "shared" together; so do a Go Server, 7.3.10 and 8.1.7 (a
// fleet in the middle of an upgrade). Once all are idle and waiting (the Ruby threads are
// blocked in BRPOP, so each is served as soon as jobs arrive), Ruby's push_bulk enqueues
// 10,000 SharedJob jobs. The Go handler records each jid it runs in memory; the Ruby job
// RPUSHes its release and jid to ferry:ran:ruby. After all have stopped: every pushed jid
// ran exactly once over all of them (no jid twice within one side, none on two sides, none
// missing, none unknown), each process ran some, and the queue, Ferry's in-progress lists
// and the retry and dead sets are empty.
func TestGoAndRubySidekiqShareAQueue(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, func(t *testing.T, sk *testsuite.RubySidekiq) {
		shareAQueue(t, sk)
	})
	t.Run("sidekiq7+sidekiq8", func(t *testing.T) {
		t.Parallel()
		testsuite.Sidekiq7.Require(t)
		testsuite.Sidekiq8.Require(t)
		shareAQueue(t, testsuite.Sidekiq7, testsuite.Sidekiq8)
	})
}

func shareAQueue(t *testing.T, sks ...*testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const n = 10000
	const rubyThreads = 5

	var rubies []*testsuite.SidekiqProcess
	for _, sk := range sks {
		rubies = append(rubies, sk.StartSidekiq(t, db.URL, sharedJobsRuby, "-q", "shared", "-c", strconv.Itoa(rubyThreads)))
	}
	var mu sync.Mutex
	goRuns := map[string]int{}
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 5, Queues: []string{"shared"}})
	srv.Handle("SharedJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		mu.Lock()
		goRuns[job.JID]++
		mu.Unlock()
		return nil
	}))
	runGoServer(t, db, srv)
	testutil.Eventually(t, 30*time.Second, "the sidekiq processes' threads to block in BRPOP", func() bool {
		for _, ruby := range rubies {
			select {
			case <-ruby.Done():
				t.Fatalf("sidekiq exited at start:\n%s", ruby.Output())
			default:
			}
		}
		return blockedReaders(t, db, "brpop") >= rubyThreads*len(rubies)
	})

	out := sks[0].Ruby(t, db.URL, `
jids = Sidekiq::Client.push_bulk("class" => "SharedJob", "queue" => "shared",
                                 "args" => (0...`+strconv.Itoa(n)+`).map { |i| [i] })
puts JSON.generate(jids)
`)
	var pushed []string
	mustUnmarshal(t, lastLine(out), &pushed)
	if len(pushed) != n {
		t.Fatalf("push_bulk returned %d jids, want %d", len(pushed), n)
	}

	goCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return countRuns(goRuns)
	}
	testutil.Eventually(t, 120*time.Second, "all jobs to run", func() bool {
		return goCount()+int(db.Client.LLen(ctx, "ferry:ran:ruby").Val()) >= n
	})
	stopGoServer(t, srv)
	for _, ruby := range rubies {
		ruby.Stop(15 * time.Second)
	}

	rubyList := db.Client.LRange(ctx, "ferry:ran:ruby", 0, -1).Val()
	rubyRuns := map[string]int{}
	byRelease := map[string]int{}
	for _, entry := range rubyList {
		major, jid, _ := strings.Cut(entry, " ")
		rubyRuns[jid]++
		byRelease[major]++
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("Go ran %d jobs, Ruby sidekiq %v (by major version)", len(goRuns), byRelease)
	if len(goRuns) == 0 {
		t.Errorf("Go ran no job: every process must take part")
	}
	for _, sk := range sks {
		if byRelease[strconv.Itoa(sk.Major())] == 0 {
			t.Errorf("Sidekiq %s ran no job: every process must take part (Go ran %d)", sk.Version(), len(goRuns))
		}
	}
	want := map[string]bool{}
	for _, jid := range pushed {
		want[jid] = true
	}
	var missing, twice, both, unknown int
	for jid := range want {
		g, r := goRuns[jid], rubyRuns[jid]
		switch {
		case g+r == 0:
			missing++
		case g > 0 && r > 0:
			both++
		case g > 1 || r > 1:
			twice++
		}
	}
	for _, runs := range []map[string]int{goRuns, rubyRuns} {
		for jid := range runs {
			if !want[jid] {
				unknown++
			}
		}
	}
	if missing+twice+both+unknown != 0 {
		t.Errorf("of %d jobs: %d never ran, %d ran twice on one side, %d ran on both sides, %d unknown jids ran",
			n, missing, twice, both, unknown)
	}
	if total := len(rubyList) + countRuns(goRuns); total != n {
		t.Errorf("%d runs in all, want exactly %d", total, n)
	}
	if l := db.Client.LLen(ctx, "queue:shared").Val(); l != 0 {
		t.Errorf("queue:shared still holds %d jobs", l)
	}
	if keys := db.Client.Keys(ctx, "ferry:inflight*").Val(); len(keys) != 0 {
		t.Errorf("in-progress keys left: %v", keys)
	}
	for _, set := range []string{"retry", "dead"} {
		if c := db.Client.ZCard(ctx, set).Val(); c != 0 {
			t.Errorf("%s set holds %d jobs", set, c)
		}
	}
}

// countRuns is the number of runs in runs, repeats included.
func countRuns(runs map[string]int) int {
	total := 0
	for _, c := range runs {
		total += c
	}
	return total
}
