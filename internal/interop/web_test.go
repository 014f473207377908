package interop

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyWebPages waits until Sidekiq's API sees the Go process busy with FERRY_BUSY jobs and
// stat:processed at FERRY_PROCESSED, then requests Sidekiq::Web pages through Rack (as a
// browser would, minus the network) and prints each page's status and body. 6.4.1's CSRF
// protection needs a Rack session; an empty one in the env is enough for GET requests.
const rubyWebPages = rubyProcessReport + `
require "sidekiq/web"
require "rack/mock"
id = ENV.fetch("FERRY_IDENTITY")
busy = Integer(ENV.fetch("FERRY_BUSY"))
processed = Integer(ENV.fetch("FERRY_PROCESSED"))
ready = ferry_wait(15) do
  p = ferry_process(id)
  p && p["busy"] == busy && ferry_work(id).size == busy && Sidekiq::Stats.new.processed == processed
end
app = Rack::MockRequest.new(Sidekiq::Web)
pages = %w[/ /busy /queues /stats].to_h do |path|
  r = app.get(path, "rack.session" => {})
  [path, {"status" => r.status, "body" => r.body}]
end
puts JSON.generate({"ready" => ready, "pages" => pages})
`

// webPage is one page as Rack returned it.
type webPage struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// TestSidekiqWebShowsGoServer: Sidekiq 6.4.1's Web UI, requested through Rack, renders
// its dashboard, Busy, Queues and stats pages with status 200 while a Go Server runs
// beside it with 2 jobs blocked in a handler, 5 finished, and 4 waiting in another queue:
//
//   - /busy names the process (hostname:pid, tag, the "ferry" and user labels, its
//     identity in the Stop form), its concurrency, and lists the two running jobs with
//     their jids, queue and class;
//   - /queues lists the waiting queue with its size;
//   - / (dashboard) shows Busy 2 and Processed 5 from Ferry's heartbeat and statistics;
//   - /stats (the dashboard's JSON) reports busy 2, processed 5, enqueued 4, 1 process.
//
// Each failed expectation prints an excerpt of the page.
func TestSidekiqWebShowsGoServer(t *testing.T) {
	t.Parallel()
	testutil.RequireRuby(t)
	db := testutil.RealRedis(t)
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

	out := testutil.Ruby(t, db.URL, rubyWebPages, testutil.WithEnv(
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
	busyWant := []string{
		host + ":" + strconv.Itoa(os.Getpid()),
		`<span class="label label-success">web-tag</span>`,
		`<span class="label label-info">ferry</span>`,
		`<span class="label label-info">go-side</span>`,
		`value="` + srv.Identity() + `"`,
		"<td>7</td>", // concurrency
		"<td>" + srv.Identity() + "</td>",
		"<td>" + blocked[0] + "</td>",
		"<td>" + blocked[1] + "</td>",
		`queues/web_run">web_run</a>`,
		"WebBlockJob",
	}
	requireInPage(t, "/busy", res.Pages["/busy"].Body, busyWant...)
	requireInPage(t, "/queues", res.Pages["/queues"].Body, `queues/web_waiting">web_waiting</a>`)
	requireInPage(t, "/queues (row of web_waiting)", tableRow(res.Pages["/queues"].Body, `queues/web_waiting"`), "<td>4 </td>")
	requireInPage(t, "/", res.Pages["/"].Body,
		`<span id="txtBusy" class="count">2</span>`,
		`<span id="txtProcessed" class="count">5</span>`)

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

// tableRow is the table row of body that holds marker ("" when there is none).
func tableRow(body, marker string) string {
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	row := body[i:]
	if end := strings.Index(row, "</tr>"); end >= 0 {
		row = row[:end]
	}
	return row
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
