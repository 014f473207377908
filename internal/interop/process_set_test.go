package interop

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// rubyProcess is ferry_process's report of the Go process.
type rubyProcess struct {
	Identity    string           `json:"identity"`
	Hostname    string           `json:"hostname"`
	PID         int              `json:"pid"`
	Tag         string           `json:"tag"`
	Labels      []string         `json:"labels"`
	Concurrency int              `json:"concurrency"`
	Queues      []string         `json:"queues"`
	Busy        int              `json:"busy"`
	Beat        json.Number      `json:"beat"`
	Quiet       string           `json:"quiet"`
	Stopping    bool             `json:"stopping"`
	StartedAt   json.Number      `json:"started_at"`
	Now         json.Number      `json:"now"`
	Version     string           `json:"version"`
	Weights     []map[string]int `json:"weights"`
}

// rubyWork is one entry of ferry_work: a running job as Sidekiq::Workers lists it.
type rubyWork struct {
	TID   string      `json:"tid"`
	Queue string      `json:"queue"`
	Class string      `json:"class"`
	JID   string      `json:"jid"`
	Args  []any       `json:"args"`
	RunAt json.Number `json:"run_at"`
}

// rubyView is what one Ruby script saw: whether its condition came true, the process (nil
// when not listed) and its running jobs.
type rubyView struct {
	OK      bool         `json:"ok"`
	Process *rubyProcess `json:"process"`
	Work    []rubyWork   `json:"work"`
}

// lookFromRuby runs action (Ruby, with id set to the Go process's identity), then waits up
// to 15 s for cond (a Ruby expression over proc, the ferry_process report) and reports what
// Ruby sees.
func lookFromRuby(t *testing.T, sk *testsuite.RubySidekiq, db *testsuite.RealRedisDB, id, action, cond string) rubyView {
	t.Helper()
	out := sk.Ruby(t, db.URL, rubyProcessReport+`
id = ENV.fetch("FERRY_IDENTITY")
`+action+`
proc = nil
ok = ferry_wait(15) { proc = ferry_process(id); `+cond+` }
puts JSON.generate({"ok" => ok, "process" => proc, "work" => ferry_work(id)})
`, testsuite.WithEnv("FERRY_IDENTITY="+id))
	var v rubyView
	mustUnmarshal(t, lastLine(out), &v)
	return v
}

// TestProcessSetListsAndControlsGoServer: each release's API sees and drives a Go
// Server like one of its own processes.
//
//   - With 3 BlockJob runs blocked in the handler, Sidekiq::ProcessSet lists the process
//     with its identity, hostname, pid, tag, labels, concurrency 6, queues in order, busy
//     3 and a beat within 3 s of Ruby's clock; Sidekiq::Workers lists exactly the 3 running
//     jobs with their queue, class, jid and args.
//   - Sidekiq::Process#quiet! quiets it: ProcessSet shows quiet "true" (stopping?), the
//     running jobs go on (busy stays 3), and a job pushed afterwards stays in its queue
//     for 2 s (twice the fetch timeout) without starting.
//   - Sidekiq::Process#stop! stops it: Run returns nil (Done closes), the process leaves
//     ProcessSet and Workers, the released jobs finished exactly once, and the job pushed
//     while quiet is still queued, untouched.
func TestProcessSetListsAndControlsGoServer(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testProcessSetListsAndControlsGoServer)
}

func testProcessSetListsAndControlsGoServer(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const busy = 3
	queues := []string{"ferry_busy", "ferry_idle"}

	b := newBlocker()
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency:       6,
		Queues:            queues,
		Tag:               "interop-ps",
		Labels:            []string{"beside-rails"},
		HeartbeatInterval: 100 * time.Millisecond,
		FetchTimeout:      time.Second,
		ShutdownTimeout:   10 * time.Second,
	})
	srv.Handle("BlockJob", b)
	run := runGoServer(t, db, srv)
	id := srv.Identity()
	client := sidekiq.NewClient(db.Client, nil)
	var pushed []string
	for i := 0; i < busy; i++ {
		jid, err := client.Push(ctx, "BlockJob", []any{"blocked", i}, sidekiq.Queue("ferry_busy"))
		if err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, jid)
	}
	b.waitStarted(t, busy, 10*time.Second)

	// Listed, busy, fresh.
	v := lookFromRuby(t, sk, db, id, "", `proc && proc["busy"] == `+strconv.Itoa(busy)+` && ferry_work(id).size == `+strconv.Itoa(busy))
	if !v.OK || v.Process == nil {
		t.Fatalf("Ruby did not see the Go process busy with %d jobs within 15 s: %+v", busy, v.Process)
	}
	p := v.Process
	host, _ := os.Hostname()
	if p.Identity != id || p.Hostname != host || p.PID != os.Getpid() || p.Tag != "interop-ps" {
		t.Errorf("ProcessSet shows identity=%q hostname=%q pid=%d tag=%q; want %q %q %d interop-ps",
			p.Identity, p.Hostname, p.PID, p.Tag, id, host, os.Getpid())
	}
	if p.Concurrency != 6 || !slices.Equal(p.Queues, queues) || p.Busy != busy {
		t.Errorf("ProcessSet shows concurrency=%d queues=%v busy=%d; want 6 %v %d", p.Concurrency, p.Queues, p.Busy, queues, busy)
	}
	if !slices.Contains(p.Labels, "beside-rails") {
		t.Errorf("ProcessSet labels = %v, want beside-rails among them", p.Labels)
	}
	if p.Quiet != "false" || p.Stopping {
		t.Errorf("a running process shows quiet=%q stopping?=%v", p.Quiet, p.Stopping)
	}
	beat, now := rubyFloatTime(t, p.Beat), rubyFloatTime(t, p.Now)
	if age := now.Sub(beat); age < -time.Second || age > 3*time.Second {
		t.Errorf("beat is %v old by Ruby's clock, want fresh (heartbeat every 100 ms)", age)
	}
	requireRecent(t, "started_at", rubyFloatTime(t, p.StartedAt))
	checkWork(t, v.Work, pushed)

	// quiet!
	v = lookFromRuby(t, sk, db, id, `ferry_process(id) && Sidekiq::ProcessSet.new.find { |x| x.identity == id }.quiet!`,
		`proc && proc["stopping"]`)
	if !v.OK || v.Process == nil {
		t.Fatalf("ProcessSet did not show the Go process quiet within 15 s after quiet!: %+v", v.Process)
	}
	if v.Process.Quiet != "true" || v.Process.Busy != busy {
		t.Errorf("after quiet!: quiet=%q busy=%d, want true and %d (running jobs go on)", v.Process.Quiet, v.Process.Busy, busy)
	}
	lateJID, err := client.Push(ctx, "BlockJob", []any{"late"}, sidekiq.Queue("ferry_busy"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case jid := <-b.started:
		t.Errorf("quiet server started job %s", jid)
	case <-time.After(2 * time.Second):
	}
	if got := db.Client.LRange(ctx, "queue:ferry_busy", 0, -1).Val(); len(got) != 1 {
		t.Errorf("queue:ferry_busy holds %d jobs while quiet, want the 1 pushed after quiet!", len(got))
	}

	// stop!
	b.release()
	v = lookFromRuby(t, sk, db, id, `Sidekiq::ProcessSet.new.find { |x| x.identity == id }&.stop!`, `proc.nil?`)
	select {
	case <-run.done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15 s of stop!")
	}
	select {
	case <-srv.Done():
	default:
		t.Error("Run returned but Done is not closed")
	}
	if run.err != nil {
		t.Errorf("Run after stop! = %v, want nil", run.err)
	}
	if !v.OK || v.Process != nil || len(v.Work) != 0 {
		t.Errorf("after stop! Ruby still lists the process (%+v) or its jobs (%v)", v.Process, v.Work)
	}
	if done := b.done(); !slices.Equal(slices.Sorted(slices.Values(done)), slices.Sorted(slices.Values(pushed))) {
		t.Errorf("finished runs %v, want each of %v once", done, pushed)
	}
	raw := db.Client.LRange(ctx, "queue:ferry_busy", 0, -1).Val()
	if len(raw) != 1 {
		t.Fatalf("queue:ferry_busy holds %d jobs after stop!, want the 1 pushed while quiet", len(raw))
	}
	if j, err := sidekiq.ParseJobString(raw[0]); err != nil || j.JID != lateJID {
		t.Errorf("queued job after stop! is %s (%v), want jid %s", raw[0], err, lateJID)
	}
}

// checkWork fails unless work lists exactly the jobs jids, each a BlockJob of queue
// ferry_busy with its args, on its own thread id, started within the last minute.
func checkWork(t *testing.T, work []rubyWork, jids []string) {
	t.Helper()
	var got []string
	tids := map[string]bool{}
	for _, w := range work {
		got = append(got, w.JID)
		tids[w.TID] = true
		if w.Queue != "ferry_busy" || w.Class != "BlockJob" || len(w.Args) != 2 || w.Args[0] != "blocked" {
			t.Errorf("Sidekiq::Workers entry %+v, want a BlockJob of ferry_busy with args [blocked, i]", w)
		}
		runAt, err := w.RunAt.Int64()
		if err != nil {
			t.Errorf("run_at %q is not an integer epoch (every Busy page calls Time.at on it)", w.RunAt)
		}
		requireRecent(t, "run_at", time.Unix(runAt, 0))
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(jids))) {
		t.Errorf("Sidekiq::Workers lists jids %v, want %v", got, jids)
	}
	if len(tids) != len(work) {
		t.Errorf("Sidekiq::Workers entries share thread ids: %v", work)
	}
}
