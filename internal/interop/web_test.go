package interop

import (
	"context"
	"encoding/json"
	"html"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// rubyWeb drives Sidekiq::Web through Rack, as a browser would minus the network:
//
//	ferry_get(path)              {"status", "body"} of a GET
//	ferry_post(path, params, from)
//	                             submits a form of the page at from: 6.x and 7.x check the
//	                             CSRF token that page's form carries (bound to the Rack
//	                             session, which is kept between requests), 8.x checks the
//	                             Sec-Fetch-Site header instead; {"status", "location"}
//	ferry_post_forged(path, params)
//	                             the same POST with neither token nor header (must be 403)
//	ferry_retry_now(jid)         presses Retry Now on the retry entry's own page
//	ferry_retry_all              presses Retry All on /retries
const rubyWeb = `
require "sidekiq/web"
require "rack/mock"
FERRY_WEB = Rack::MockRequest.new(Sidekiq::Web)
FERRY_SESSION = {}
def ferry_get(path)
  r = FERRY_WEB.get(path, "rack.session" => FERRY_SESSION)
  {"status" => r.status, "body" => r.body}
end
def ferry_post(path, params, from)
  env = {"rack.session" => FERRY_SESSION}
  if FERRY_SIDEKIQ_MAJOR >= 8
    env["HTTP_SEC_FETCH_SITE"] = "same-origin"
  else
    page = ferry_get(from)["body"]
    token = page[/name=['"]authenticity_token['"] value=['"]([^'"]+)['"]/, 1] or raise "no authenticity_token in #{from}"
    params = params.merge("authenticity_token" => token)
  end
  r = FERRY_WEB.post(path, env.merge(params: params))
  {"status" => r.status, "location" => r.location}
end
def ferry_retry_now(jid)
  e = Sidekiq::RetrySet.new.find_job(jid) or raise "no retry entry #{jid}"
  from = "/retries/#{e.score}-#{e.jid}"
  action = ferry_get(from)["body"][%r{<form[^>]*action="([^"]*/retries/[^"]*-#{jid})"}, 1] or raise "no Retry Now form on #{from}"
  ferry_post(action, {"retry" => "Retry Now"}, from)
end
def ferry_retry_all
  ferry_post("/retries/all/retry", {"retry" => "Retry All"}, "/retries")
end
def ferry_post_forged(path, params)
  r = FERRY_WEB.post(path, "rack.session" => FERRY_SESSION, params: params)
  {"status" => r.status, "location" => r.location}
end
`

// rubyWebPages waits until Sidekiq's API sees the Go process busy with FERRY_BUSY jobs and
// stat:processed at FERRY_PROCESSED, then requests Sidekiq::Web pages and prints each page's
// status and body.
const rubyWebPages = rubyProcessReport + rubyWeb + `
id = ENV.fetch("FERRY_IDENTITY")
busy = Integer(ENV.fetch("FERRY_BUSY"))
processed = Integer(ENV.fetch("FERRY_PROCESSED"))
ready = ferry_wait(15) do
  p = ferry_process(id)
  p && p["busy"] == busy && ferry_work(id).size == busy && Sidekiq::Stats.new.processed == processed
end
pages = %w[/ /busy /queues /stats].to_h { |path| [path, ferry_get(path)] }
puts JSON.generate({"ready" => ready, "pages" => pages})
`

// webPage is one page as Rack returned it.
type webPage struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// TestSidekiqWebShowsGoServer: each release's Web UI, requested through Rack, renders its
// dashboard, Busy, Queues and stats pages with status 200 while a Go Server runs beside it
// with 2 jobs blocked in a handler, 5 finished, and 4 waiting in another queue:
//
//   - /busy names the process (hostname:pid, tag, the "ferry" and user labels, its
//     identity in the Quiet/Stop form), its queue, threads 7 and busy 2 in its row, and
//     lists the two running jobs with their jids, queue and class;
//   - /queues lists the waiting queue with size 4;
//   - / (dashboard) shows Busy 2 and Processed 5 from Ferry's heartbeat and statistics;
//   - /stats (the dashboard's JSON) reports busy 2, processed 5, enqueued 4, 1 process.
//
// Each failed expectation prints an excerpt of the page.
func TestSidekiqWebShowsGoServer(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testSidekiqWebShowsGoServer)
}

func testSidekiqWebShowsGoServer(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()

	b := newBlocker()
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency:       7,
		Queues:            []string{"web_run"},
		Tag:               "web-tag",
		Labels:            []string{"go-side"},
		HeartbeatInterval: 100 * time.Millisecond,
	})
	srv.Handle("WebBlockJob", b)
	srv.Handle("WebQuickJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return nil }))
	runGoServer(t, db, srv)
	client := sidekiq.NewClient(db.Client, nil)
	quick := make([][]any, 5)
	for i := range quick {
		quick[i] = []any{i}
	}
	if _, err := client.PushBulk(ctx, "WebQuickJob", quick, sidekiq.Queue("web_run")); err != nil {
		t.Fatal(err)
	}
	blocked, err := client.PushBulk(ctx, "WebBlockJob", [][]any{{"a"}, {"b"}}, sidekiq.Queue("web_run"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitStarted(t, 2, 10*time.Second)
	defer b.release()
	if _, err := client.PushBulk(ctx, "WaitingJob", [][]any{{1}, {2}, {3}, {4}}, sidekiq.Queue("web_waiting")); err != nil {
		t.Fatal(err)
	}

	out := sk.Ruby(t, db.URL, rubyWebPages, testsuite.WithEnv(
		"FERRY_IDENTITY="+srv.Identity(), "FERRY_BUSY=2", "FERRY_PROCESSED=5"))
	var res struct {
		Ready bool               `json:"ready"`
		Pages map[string]webPage `json:"pages"`
	}
	mustUnmarshal(t, lastLine(out), &res)
	if !res.Ready {
		t.Error("Sidekiq's API did not see the Go process busy with 2 jobs and 5 processed within 15 s")
	}
	for _, path := range []string{"/", "/busy", "/queues", "/stats"} {
		if p := res.Pages[path]; p.Status != 200 {
			t.Errorf("GET %s: status %d, want 200\n%s", path, p.Status, excerpt(p.Body, "", 1500))
		}
	}

	host, _ := os.Hostname()
	busy := res.Pages["/busy"].Body
	requireInPage(t, "/busy", busy,
		host+":"+strconv.Itoa(os.Getpid()),
		`<span class="label label-success">web-tag</span>`,
		`<span class="label label-info">ferry</span>`,
		`<span class="label label-info">go-side</span>`,
		`name="identity" value="`+srv.Identity()+`"`,
		`queues/web_run">web_run</a>`,
		"WebBlockJob",
	)
	// The process row: Name (with its queues), Started, RSS, Threads, Busy, the form.
	if cells := rowCells(busy, `name="identity" value="`+srv.Identity()+`"`); len(cells) < 5 {
		t.Errorf("/busy has no process row for %s: %q", srv.Identity(), cells)
	} else {
		if !strings.Contains(cells[0], "web_run") {
			t.Errorf("/busy process row names queues %q, want web_run", cells[0])
		}
		if cells[3] != "7" || cells[4] != "2" {
			t.Errorf("/busy process row shows threads %q, busy %q; want 7 and 2", cells[3], cells[4])
		}
	}
	for _, jid := range blocked {
		cells := rowCells(busy, ">"+jid+"<")
		if len(cells) < 5 || cells[0] != srv.Identity() || cells[2] != jid || cells[3] != "web_run" || cells[4] != "WebBlockJob" {
			t.Errorf("/busy row of running job %s: %q, want process %s, queue web_run, class WebBlockJob", jid, cells, srv.Identity())
		}
	}
	queues := res.Pages["/queues"].Body
	if cells := rowCells(queues, `queues/web_waiting"`); len(cells) < 2 || cells[1] != "4" {
		t.Errorf("/queues row of web_waiting: %q, want size 4\n%s", cells, excerpt(queues, "<table", 3000))
	}
	dash := res.Pages["/"].Body
	for id, want := range map[string]string{"txtBusy": "2", "txtProcessed": "5"} {
		if got := countByID(dash, id); got != want {
			t.Errorf("dashboard %s = %q, want %s", id, got, want)
		}
	}

	var stats struct {
		Sidekiq struct {
			Processed int `json:"processed"`
			Busy      int `json:"busy"`
			Enqueued  int `json:"enqueued"`
			Processes int `json:"processes"`
		} `json:"sidekiq"`
	}
	if err := json.Unmarshal([]byte(res.Pages["/stats"].Body), &stats); err != nil {
		t.Fatalf("/stats is not JSON: %v\n%s", err, excerpt(res.Pages["/stats"].Body, "", 500))
	}
	if s := stats.Sidekiq; s.Processed != 5 || s.Busy != 2 || s.Enqueued != 4 || s.Processes != 1 {
		t.Errorf("/stats = %+v, want processed 5, busy 2, enqueued 4, processes 1", s)
	}
}

// rubyWebQuietStop presses the Busy page's Quiet and then Stop buttons for the Go process
// (and first tries a forged POST, which must be refused), waiting after each for Sidekiq's
// API to see the effect: quiet, then gone.
const rubyWebQuietStop = rubyProcessReport + rubyWeb + `
id = ENV.fetch("FERRY_IDENTITY")
res = {}
res["forged"] = ferry_post_forged("/busy", {"identity" => id, "quiet" => "1"})
res["forged_quiet"] = ferry_wait(1) { ferry_process(id)&.fetch("quiet") == "true" }
res["quiet"] = ferry_post("/busy", {"identity" => id, "quiet" => "1"}, "/busy")
res["quiet_seen"] = ferry_wait(15) { ferry_process(id)&.fetch("quiet") == "true" }
res["busy_after_quiet"] = ferry_process(id)&.fetch("busy")
res["stop"] = ferry_post("/busy", {"identity" => id, "stop" => "1"}, "/busy")
res["gone"] = ferry_wait(20) { ferry_process(id).nil? }
puts JSON.generate(res)
`

// TestSidekiqWebQuietsAndStopsGoServer: the Busy page's Quiet and Stop buttons, posted as
// each release's Web UI expects (the page's CSRF token on 6.x and 7.x, Sec-Fetch-Site on
// 8.x), quiet and then stop a Go Server: after Quiet the process shows quiet with its
// running job going on, Run is still running and a job pushed then stays queued; after
// Stop, Run returns nil, the running job finished, and the process leaves ProcessSet. A
// POST with neither token nor header is refused (403) and changes nothing.
func TestSidekiqWebQuietsAndStopsGoServer(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testSidekiqWebQuietsAndStopsGoServer)
}

func testSidekiqWebQuietsAndStopsGoServer(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	b := newBlocker()
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency:       3,
		Queues:            []string{"web_qs"},
		HeartbeatInterval: 100 * time.Millisecond,
		FetchTimeout:      time.Second,
		ShutdownTimeout:   10 * time.Second,
	})
	srv.Handle("WebBlockJob", b)
	run := runGoServer(t, db, srv)
	client := sidekiq.NewClient(db.Client, nil)
	running, err := client.Push(ctx, "WebBlockJob", []any{"running"}, sidekiq.Queue("web_qs"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitStarted(t, 1, 10*time.Second)

	// Release the running job once the process shows quiet, so that Stop finds it done.
	go func() {
		for ctx := t.Context(); ctx.Err() == nil; {
			if db.Client.HGet(ctx, srv.Identity(), "quiet").Val() == "true" {
				b.release()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	out := sk.Ruby(t, db.URL, rubyWebQuietStop, testsuite.WithEnv("FERRY_IDENTITY="+srv.Identity()))
	type post struct {
		Status   int    `json:"status"`
		Location string `json:"location"`
	}
	var res struct {
		Forged, Quiet, Stop post
		ForgedQuiet         bool `json:"forged_quiet"`
		QuietSeen           bool `json:"quiet_seen"`
		BusyAfterQuiet      *int `json:"busy_after_quiet"`
		Gone                bool `json:"gone"`
	}
	mustUnmarshalPlain(t, lastLine(out), &res)
	if res.Forged.Status != 403 || res.ForgedQuiet {
		t.Errorf("forged POST /busy: status %d, quieted the process: %v; want 403 and no effect", res.Forged.Status, res.ForgedQuiet)
	}
	for name, p := range map[string]post{"Quiet": res.Quiet, "Stop": res.Stop} {
		if p.Status != 302 || !strings.HasSuffix(p.Location, "/busy") {
			t.Errorf("POST /busy %s: status %d location %q, want a 302 back to /busy", name, p.Status, p.Location)
		}
	}
	if !res.QuietSeen {
		t.Error("ProcessSet did not show the Go process quiet within 15 s of the Quiet button")
	}
	if !res.Gone {
		t.Error("the Go process was still in ProcessSet 20 s after the Stop button")
	}
	select {
	case <-run.done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15 s of the Stop button")
	}
	if run.err != nil {
		t.Errorf("Run after Stop = %v, want nil", run.err)
	}
	if done := b.done(); len(done) != 1 || done[0] != running {
		t.Errorf("finished runs %v, want the running job %s once", done, running)
	}
}

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// text is the visible text of an HTML fragment: tags dropped, entities decoded, spaces
// collapsed.
func text(fragment string) string {
	return strings.TrimSpace(spaceRE.ReplaceAllString(html.UnescapeString(tagRE.ReplaceAllString(fragment, " ")), " "))
}

// rowCells is the text of each cell of the table row of body holding marker (nil when
// there is none). Layouts differ between releases; cell order within a row does not.
func rowCells(body, marker string) []string {
	i := strings.Index(body, marker)
	if i < 0 {
		return nil
	}
	start := strings.LastIndex(body[:i], "<tr")
	end := strings.Index(body[i:], "</tr>")
	if start < 0 || end < 0 {
		return nil
	}
	row := body[start : i+end]
	var cells []string
	for _, part := range strings.Split(row, "<td")[1:] {
		if j := strings.IndexByte(part, '>'); j >= 0 {
			part = part[j+1:]
		}
		if j := strings.Index(part, "</td>"); j >= 0 {
			part = part[:j]
		}
		cells = append(cells, text(part))
	}
	return cells
}

// countByID is the text of the element with the given id attribute ("" when absent).
func countByID(body, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// requireInPage fails for each of wants missing from the page body, showing the part of
// the page where it was expected.
func requireInPage(t *testing.T, path, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s lacks %q\n%s", path, w, excerpt(body, `<table`, 3000))
		}
	}
}

// excerpt is up to n bytes of body from the first occurrence of from (or the start).
func excerpt(body, from string, n int) string {
	if i := strings.Index(body, from); from != "" && i >= 0 {
		body = body[i:]
	}
	if len(body) > n {
		return body[:n] + "…"
	}
	return body
}
