package periodic_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyCronView prints what sidekiq-cron 1.8.0 makes of the jobs in Redis: Job.all, the
// Web tab's list and detail pages (Sidekiq::Web through Rack), and, when FERRY_TAB_ACTION
// is set, presses that button (enable or disable) on the tab for FERRY_JOB. 6.4.1's CSRF
// check accepts an unmasked token equal to the session's.
const rubyCronView = `
require "securerandom"
require "sidekiq/web"
require "sidekiq/cron/web"
require "rack/mock"
name = ENV.fetch("FERRY_JOB")
app = Rack::MockRequest.new(Sidekiq::Web)
out = {}
if (action = ENV["FERRY_TAB_ACTION"])
  tok = SecureRandom.base64(32)
  r = app.post("/cron/#{name}/#{action}", params: {"authenticity_token" => tok}, "rack.session" => {csrf: tok})
  out["action_status"] = r.status
end
out["jobs"] = Sidekiq::Cron::Job.all.sort_by(&:name).map do |j|
  {"name" => j.name, "cron" => j.cron, "klass" => j.klass, "status" => j.status,
   "last" => j.last_enqueue_time && j.last_enqueue_time.to_f, "valid" => j.valid?,
   "message" => j.message, "history" => j.jid_history_from_redis}
end
r = app.get("/cron", "rack.session" => {})
out["index"] = {"status" => r.status, "body" => r.body}
r = app.get("/cron/#{name}", "rack.session" => {})
out["show"] = {"status" => r.status, "body" => r.body}
puts JSON.generate(out)
`

type rubyJob struct {
	Name    string  `json:"name"`
	Cron    string  `json:"cron"`
	Klass   string  `json:"klass"`
	Status  string  `json:"status"`
	Last    float64 `json:"last"`
	Valid   bool    `json:"valid"`
	Message string  `json:"message"`
	History []struct {
		JID      string `json:"jid"`
		Enqueued string `json:"enqueued"`
	} `json:"history"`
}

type rubyView struct {
	ActionStatus int       `json:"action_status"`
	Jobs         []rubyJob `json:"jobs"`
	Index        struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"index"`
	Show struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"show"`
}

func viewFromRuby(t *testing.T, url, job, action string) rubyView {
	t.Helper()
	var v rubyView
	res := testsuite.Ruby(t, url, `require "sidekiq-cron"`+"\n"+rubyCronView,
		testsuite.WithEnv("FERRY_JOB="+job, "FERRY_TAB_ACTION="+action))
	if err := json.Unmarshal([]byte(res), &v); err != nil {
		t.Fatalf("ruby printed %q: %v", res, err)
	}
	return v
}

// TestFerryJobsInSidekiqCron: jobs a Ferry scheduler adds are sidekiq-cron jobs to Ruby:
// Sidekiq::Cron::Job.all lists them with their cron, class, status, message and last
// enqueue time, valid (the @every 7s job, which fugit cannot read, is listed but invalid,
// as Ruby pollers skip it); the Web tab's list shows them and the detail page shows the
// jids Ferry enqueued; and the tab's Disable button stops Ferry's enqueues (witnessed by
// a second job that keeps running), its Enable button resumes them.
func TestFerryJobsInSidekiqCron(t *testing.T) {
	t.Parallel()
	requireSidekiqCron(t)
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	sched, _ := newScheduler(t, db.URL, periodic.Config{Location: time.UTC, RefreshInterval: 200 * time.Millisecond})
	for _, j := range []periodic.Job{
		{Name: "ferry_report", Spec: "* * * * * *", Class: "ReportJob", Args: []any{"daily", 5}, Queue: "reports",
			Retry: sidekiq.RetryN(3), Description: "from Go"},
		{Name: "ferry_witness", Spec: "@every 1s", Class: "WitnessJob", Queue: "witness"},
		{Name: "ferry_every7", Spec: "@every 7s", Class: "SevenJob", Queue: "seven"},
	} {
		if err := sched.Add(j); err != nil {
			t.Fatal(err)
		}
	}
	startScheduler(t, sched)
	testutil.Eventually(t, 20*time.Second, "two enqueues of ferry_report", func() bool {
		return queueLen(t, db.Client, "queue:reports") >= 2
	})

	v := viewFromRuby(t, db.URL, "ferry_report", "")
	if len(v.Jobs) != 3 {
		t.Fatalf("Job.all: %+v", v.Jobs)
	}
	rep, seven, witness := v.Jobs[1], v.Jobs[0], v.Jobs[2]
	if rep.Name != "ferry_report" || rep.Cron != "* * * * * * UTC" || rep.Klass != "ReportJob" ||
		rep.Status != "enabled" || !rep.Valid || rep.Last == 0 || len(rep.History) == 0 {
		t.Fatalf("ferry_report as Ruby sees it: %+v", rep)
	}
	var msg map[string]any
	if err := json.Unmarshal([]byte(rep.Message), &msg); err != nil {
		t.Fatal(err)
	}
	if msg["class"] != "ReportJob" || msg["queue"] != "reports" || msg["retry"] != float64(3) {
		t.Fatalf("message %s", rep.Message)
	}
	if d := time.Since(time.Unix(int64(rep.Last), 0)); d < 0 || d > time.Minute {
		t.Fatalf("last enqueue time %v ago", d)
	}
	if seven.Name != "ferry_every7" || seven.Cron != "@every 7s" || seven.Valid {
		t.Fatalf("ferry_every7 as Ruby sees it: %+v", seven)
	}
	if witness.Cron != "* * * * * * UTC" || !witness.Valid {
		t.Fatalf("ferry_witness as Ruby sees it: %+v", witness)
	}
	if v.Index.Status != 200 || !strings.Contains(v.Index.Body, "ferry_report") || !strings.Contains(v.Index.Body, "ferry_every7") {
		t.Fatalf("Web tab list: status %d\n%s", v.Index.Status, excerpt(v.Index.Body, "ferry_report"))
	}
	if v.Show.Status != 200 || !strings.Contains(v.Show.Body, rep.History[0].JID) {
		t.Fatalf("Web tab detail page: status %d, no jid %s\n%s", v.Show.Status, rep.History[0].JID, excerpt(v.Show.Body, "jid"))
	}

	// Disable from the tab.
	v = viewFromRuby(t, db.URL, "ferry_report", "disable")
	if v.ActionStatus != 302 || v.Jobs[1].Status != "disabled" {
		t.Fatalf("Disable on the tab: status %d, job %+v", v.ActionStatus, v.Jobs[1])
	}
	// Once the witness has a job for a tick after the disable, the scheduler's pass
	// that handled ferry_report's tick before it is over (one pass handles the jobs in
	// name order); from there, three more witness ticks must bring no report.
	waitWitness := func(n int64) {
		target := queueLen(t, db.Client, "queue:witness") + n
		testutil.Eventually(t, 30*time.Second, "witness enqueues", func() bool {
			return queueLen(t, db.Client, "queue:witness") >= target
		})
	}
	waitWitness(2)
	reports := queueLen(t, db.Client, "queue:reports")
	waitWitness(3)
	if n := queueLen(t, db.Client, "queue:reports"); n != reports {
		t.Fatalf("a disabled job was enqueued: %d -> %d", reports, n)
	}
	v = viewFromRuby(t, db.URL, "ferry_report", "enable")
	if v.ActionStatus != 302 || v.Jobs[1].Status != "enabled" {
		t.Fatalf("Enable on the tab: status %d, job %+v", v.ActionStatus, v.Jobs[1])
	}
	testutil.Eventually(t, 20*time.Second, "enqueues after enabling", func() bool {
		return queueLen(t, db.Client, "queue:reports") > reports
	})
	// Ruby's Job#save (what the buttons call) rewrote every field; Ferry still reads it.
	infos, err := periodic.List(ctx, db.Client, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name == "ferry_report" && (in.Err != nil || in.LastEnqueue.IsZero() || !in.Enabled()) {
			t.Fatalf("List after Ruby's save: %+v", in)
		}
	}
}

// TestRubyJobRunsInGo: jobs a Rails app defines with sidekiq-cron (a plain class and an
// ActiveJob class, neither loaded in any Ruby process) are enqueued by a Ferry scheduler
// attached to a Go server and run by its handlers, with their arguments; Ruby then sees
// the jids in the jobs' history.
func TestRubyJobRunsInGo(t *testing.T) {
	t.Parallel()
	requireSidekiqCron(t)
	db := testsuite.RealRedis(t)
	var out struct {
		Errors map[string]any `json:"errors"`
	}
	rubyCron(t, db.URL, `
errs = Sidekiq::Cron::Job.load_from_array([
  {"name" => "rails_cleanup", "cron" => "* * * * * *", "class" => "CleanupJob", "queue" => "go_jobs",
   "args" => [{"days" => 30}], "description" => "defined in Rails"},
  {"name" => "rails_mailer", "cron" => "* * * * * *", "class" => "ReportMailerJob", "queue" => "go_jobs",
   "active_job" => true, "args" => ["weekly"]},
])
puts JSON.generate({"errors" => errs})
`, &out)
	if len(out.Errors) != 0 {
		t.Fatalf("sidekiq-cron refused the jobs: %v", out.Errors)
	}

	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Queues: []string{"go_jobs"}, Concurrency: 2})
	var mu sync.Mutex
	got := map[string]*sidekiq.Job{}
	record := sidekiq.HandlerFunc(func(_ context.Context, j *sidekiq.Job) error {
		mu.Lock()
		defer mu.Unlock()
		if got[j.HandlerName()] == nil {
			got[j.HandlerName()] = j
		}
		return nil
	})
	srv.Handle("CleanupJob", record)
	srv.Handle("ReportMailerJob", record)
	sched := periodic.New(db.Client, sidekiq.NewClient(db.Client, nil), &periodic.Config{Location: time.UTC})
	periodic.Attach(srv, sched)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	testutil.Eventually(t, 30*time.Second, "both Rails-defined jobs run in Go", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	mu.Lock()
	cleanup, mailer := got["CleanupJob"], got["ReportMailerJob"]
	mu.Unlock()
	if string(cleanup.Args) != `[{"days":30}]` || cleanup.Queue != "go_jobs" {
		t.Fatalf("CleanupJob: %s", cleanup.Raw())
	}
	aj, err := middleware.DecodeActiveJob(mailer)
	if err != nil {
		t.Fatalf("ReportMailerJob: %v: %s", err, mailer.Raw())
	}
	if mailer.Class != sidekiq.ActiveJobWrapperClass || mailer.Wrapped != "ReportMailerJob" ||
		aj.Envelope.QueueName != "go_jobs" || aj.Envelope.JobClass != "ReportMailerJob" || len(aj.Args) != 1 || aj.Args[0] != "weekly" {
		t.Fatalf("ReportMailerJob: %+v: %s", aj, mailer.Raw())
	}
	var hist struct {
		JIDs []string `json:"jids"`
	}
	rubyCron(t, db.URL, `
puts JSON.generate({"jids" => Sidekiq::Cron::Job.find("rails_cleanup").jid_history_from_redis.map { |h| h["jid"] }})
`, &hist)
	found := false
	for _, j := range hist.JIDs {
		found = found || j == cleanup.JID
	}
	if !found {
		t.Fatalf("jid %s not in Ruby's history %v", cleanup.JID, hist.JIDs)
	}
}

// excerpt returns up to 600 bytes of body around the first occurrence of near.
func excerpt(body, near string) string {
	i := strings.Index(body, near)
	if i < 0 {
		i = 0
	}
	lo, hi := max(0, i-300), min(len(body), i+300)
	return body[lo:hi]
}
