package interop

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyRetryView prints what Sidekiq's API says of the retry and dead sets, and the status
// and body of the Web UI pages that show them: /retries, the first retry entry's page,
// /morgue and the dead entry's page.
const rubyRetryView = rubyWeb + `
page = method(:ferry_get)
retries = Sidekiq::RetrySet.new.map do |e|
  {"jid" => e.jid, "klass" => e.klass, "display_class" => e.display_class, "args" => e.args,
   "error_class" => e["error_class"], "error_message" => e["error_message"],
   "retry_count" => e["retry_count"], "at" => e.at.to_f, "failed_at" => e["failed_at"], "key" => "#{e.score}-#{e.jid}"}
end
dead = Sidekiq::DeadSet.new.map { |e| {"jid" => e.jid, "klass" => e.klass, "error_message" => e["error_message"]} }
pages = {"/retries" => page.("/retries"), "/morgue" => page.("/morgue")}
pages["/retries/<key>"] = page.("/retries/#{retries.first["key"]}") if retries.first
pages["/morgue/<key>"] = (d = Sidekiq::DeadSet.new.first; page.("/morgue/#{d.score}-#{d.jid}")) if dead.first
puts JSON.generate({"retries" => retries, "dead" => dead, "pages" => pages})
`

type rubyRetryReport struct {
	Retries []struct {
		JID          string  `json:"jid"`
		Klass        string  `json:"klass"`
		Args         []any   `json:"args"`
		ErrorClass   string  `json:"error_class"`
		ErrorMessage string  `json:"error_message"`
		RetryCount   *int    `json:"retry_count"`
		At           float64 `json:"at"`
		FailedAt     float64 `json:"failed_at"`
	} `json:"retries"`
	Dead []struct {
		JID          string `json:"jid"`
		Klass        string `json:"klass"`
		ErrorMessage string `json:"error_message"`
	} `json:"dead"`
	Pages map[string]webPage `json:"pages"`
}

// TestGoFailureSeenAndRetriedFromRuby: a Go handler fails. Sidekiq::RetrySet shows the
// entry with Ruby's class name, the error class the Go error chose, the message, retry
// count 0 and a next run inside Sidekiq's first back-off window; the Web UI's /retries,
// the entry's own page, /morgue (holding a job Go discarded) and the dead entry's page
// render with status 200 and show them. Then the Web UI's Retry Now on the first entry's
// page, and Retry All on /retries for the second, make the Go server run each again.
func TestGoFailureSeenAndRetriedFromRuby(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testGoFailureSeenAndRetriedFromRuby)
}

func testGoFailureSeenAndRetriedFromRuby(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()

	var mu sync.Mutex
	runs := map[string]int{}
	ran := make(chan string, 16)
	// Sidekiq's delay plus an hour, so that only Ruby's "retry now" can bring the jobs back
	// while the test looks at them.
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 2, Queues: []string{"pay"},
		RetryDelay: func(count int, err error, job *sidekiq.Job) time.Duration {
			return time.Hour + sidekiq.DefaultRetryDelay(count, err, job)
		}})
	srv.Handle("Payments::ChargeJob", sidekiq.HandlerFunc(func(_ context.Context, job *sidekiq.Job) error {
		mu.Lock()
		runs[job.JID]++
		n := runs[job.JID]
		mu.Unlock()
		ran <- job.JID
		if n == 1 {
			return failingError{}
		}
		return nil
	}))
	srv.Handle("Payments::BadJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		return sidekiq.Discard(failingError{})
	}))
	runGoServer(t, db, srv)

	c := sidekiq.NewClient(db.Client, nil)
	failedFrom := time.Now()
	first, err := c.Push(ctx, "Payments::ChargeJob", []any{"order-1", 1250}, sidekiq.Queue("pay"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Push(ctx, "Payments::ChargeJob", []any{"order-2", 99}, sidekiq.Queue("pay"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "Payments::BadJob", []any{"order-3"}, sidekiq.Queue("pay")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "two retries and one dead job", func() bool {
		return db.Client.ZCard(ctx, "retry").Val() == 2 && db.Client.ZCard(ctx, "dead").Val() == 1
	})
	failedTo := time.Now()

	var rep rubyRetryReport
	mustUnmarshalPlain(t, lastLine(sk.Ruby(t, db.URL, rubyRetryView)), &rep)
	if len(rep.Retries) != 2 || len(rep.Dead) != 1 {
		t.Fatalf("Ruby sees %d retries and %d dead, want 2 and 1", len(rep.Retries), len(rep.Dead))
	}
	for _, e := range rep.Retries {
		if e.Klass != "Payments::ChargeJob" || e.ErrorClass != "Payments::Declined" || e.ErrorMessage != "card declined" {
			t.Errorf("retry entry %s: klass %q error %q %q", e.JID, e.Klass, e.ErrorClass, e.ErrorMessage)
		}
		if e.RetryCount == nil || *e.RetryCount != 0 {
			t.Errorf("retry entry %s: retry_count %v, want 0", e.JID, e.RetryCount)
		}
		// count 0: 0**4 + 15 + rand(10)*(0+1) seconds, i.e. 15 to 25 s after the failure
		// (plus the test's hour).
		failed := time.Unix(0, int64(e.FailedAt*1e9))
		at := time.Unix(0, int64(e.At*1e9))
		if failed.Before(failedFrom.Add(-time.Second)) || failed.After(failedTo.Add(time.Second)) {
			t.Errorf("retry entry %s: failed_at %v outside the test's window", e.JID, failed)
		}
		if d := at.Sub(failed) - time.Hour; d < 15*time.Second || d > 25*time.Second {
			t.Errorf("retry entry %s: next run %v after failure, want 15 to 25 s", e.JID, d)
		}
	}
	if rep.Dead[0].Klass != "Payments::BadJob" || rep.Dead[0].ErrorMessage != "card declined" {
		t.Errorf("dead entry: %+v", rep.Dead[0])
	}
	for path, want := range map[string][]string{
		"/retries":       {"Payments::ChargeJob", "card declined", "order-1", "order-2"},
		"/retries/<key>": {"Payments::ChargeJob", "Payments::Declined", "card declined"},
		"/morgue":        {"Payments::BadJob", "card declined"},
		"/morgue/<key>":  {"Payments::BadJob", "Payments::Declined"},
	} {
		p, ok := rep.Pages[path]
		if !ok || p.Status != 200 {
			t.Errorf("%s: status %d, want 200; body starts %q", path, p.Status, excerpt(p.Body, "", 300))
			continue
		}
		for _, w := range want {
			if !strings.Contains(p.Body, w) {
				t.Errorf("%s does not show %q", path, w)
			}
		}
	}

	// Drain the first runs, then retry one entry, then all.
	for range 2 {
		<-ran
	}
	pressed := sk.Ruby(t, db.URL, rubyWeb+`puts JSON.generate(ferry_retry_now(ENV.fetch("JID")))`, testsuite.WithEnv("JID="+first))
	requireRedirect(t, "Retry Now", pressed, "/retries")
	waitRun(t, ran, first)
	if n := db.Client.ZCard(ctx, "retry").Val(); n != 1 {
		t.Fatalf("after Retry Now the retry set holds %d, want 1", n)
	}
	pressed = sk.Ruby(t, db.URL, rubyWeb+`puts JSON.generate(ferry_retry_all)`)
	requireRedirect(t, "Retry All", pressed, "/retries")
	waitRun(t, ran, second)
	testutil.Eventually(t, 10*time.Second, "an empty retry set", func() bool { return db.Client.ZCard(ctx, "retry").Val() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if runs[first] != 2 || runs[second] != 2 {
		t.Errorf("runs: first %d, second %d; want 2 each", runs[first], runs[second])
	}
}

// requireRedirect fails unless out's last line is a ferry_post result redirecting (302) to
// a location ending in path: the form was accepted.
func requireRedirect(t *testing.T, button, out, path string) {
	t.Helper()
	var res struct {
		Status   int    `json:"status"`
		Location string `json:"location"`
	}
	mustUnmarshalPlain(t, lastLine(out), &res)
	if res.Status != 302 || !strings.HasSuffix(res.Location, path) {
		t.Errorf("%s: status %d location %q, want a 302 to %s", button, res.Status, res.Location, path)
	}
}

func waitRun(t *testing.T, ran <-chan string, jid string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case got := <-ran:
			if got == jid {
				return
			}
		case <-deadline:
			t.Fatalf("job %s did not run again within 15 s", jid)
		}
	}
}

func mustUnmarshalPlain(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", excerpt(string(data), "", 500), err)
	}
}
