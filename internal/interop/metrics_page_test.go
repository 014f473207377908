// Issue 16, item 2: the Server records execution metrics (sidekiq/execmetrics.go: on
// every finished job, flushed with each heartbeat) that 7.x's and 8.x's Metrics tab reads.

package interop

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// rubyMetricsView waits (up to 30 s) until Sidekiq::Metrics::Query sees FERRY_PROCESSED runs
// in the last 5 minutes, then prints Query's totals per class, SlowJob's histogram summed
// over the minutes, and the Web UI's Metrics overview and SlowJob page.
const rubyMetricsView = rubyWeb + `
require "sidekiq/metrics/query"
want = Integer(ENV.fetch("FERRY_PROCESSED"))
totals = nil
deadline = Time.now + 30
loop do
  totals = Sidekiq::Metrics::Query.new.top_jobs(minutes: 5).job_results.transform_values { |jr| jr.totals }
  break if totals.values.sum { |t| t["p"] } >= want || Time.now > deadline
  sleep 0.1
end
slow = Sidekiq::Metrics::Query.new.for_job("Metrics::SlowJob", minutes: 5).job_results["Metrics::SlowJob"]
hist = Array.new(26, 0)
slow.hist.each_value { |h| h.reverse.each_with_index { |n, i| hist[i] += n } }
res = {"totals" => totals, "slow_hist" => hist}
res["hour_totals"] = Sidekiq::Metrics::Query.new.top_jobs(hours: 1).job_results.transform_values { |jr| jr.totals } if FERRY_SIDEKIQ_MAJOR >= 8
res["pages"] = {"/metrics" => ferry_get("/metrics"), "/metrics/slow" => ferry_get("/metrics/Metrics::SlowJob")}
puts JSON.generate(res)
`

// TestMetricsPageShowsGoJobs: a Go Server runs 20 fast jobs, 3 that take at least 50 ms, 4
// that fail, and 2 ActiveJob jobs; Sidekiq 7.3.10's and 8.1.7's Metrics::Query then report,
// for the last minutes, exactly those counts per class (the ActiveJob ones under their
// ActiveJob class), no time for the failures, at least 150 ms for the slow ones, and a
// histogram of the slow ones with all 3 runs at 45 ms or more; 8.x's hourly view agrees; the
// Metrics page lists each class with its success and failure counts, and the slow class's
// page charts the same histogram.
func TestMetricsPageShowsGoJobs(t *testing.T) {
	t.Parallel()
	for _, sk := range []*testsuite.RubySidekiq{testsuite.Sidekiq7, testsuite.Sidekiq8} {
		t.Run(sk.String(), func(t *testing.T) {
			t.Parallel()
			sk.Require(t)
			testMetricsPageShowsGoJobs(t, sk)
		})
	}
}

func testMetricsPageShowsGoJobs(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const slowRun = 50 * time.Millisecond
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency:       4,
		Queues:            []string{"metrics"},
		HeartbeatInterval: 100 * time.Millisecond,
	})
	srv.Handle("Metrics::FastJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return nil }))
	srv.Handle("Metrics::SlowJob", sidekiq.HandlerFunc(func(ctx context.Context, _ *sidekiq.Job) error {
		select {
		case <-time.After(slowRun):
		case <-ctx.Done():
		}
		return nil
	}))
	srv.Handle("Metrics::FailJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		return errors.New("metrics failure")
	}))
	srv.Handle("Metrics::WelcomeJob", middleware.ActiveJob(func(context.Context, *sidekiq.Job, middleware.AJArgs) error { return nil }))
	runGoServer(t, db, srv)

	c := sidekiq.NewClient(db.Client, nil)
	push := func(class string, n int, opts ...sidekiq.PushOption) {
		t.Helper()
		args := make([][]any, n)
		for i := range args {
			args[i] = []any{i}
		}
		if _, err := c.PushBulk(ctx, class, args, append(opts, sidekiq.Queue("metrics"))...); err != nil {
			t.Fatal(err)
		}
	}
	push("Metrics::FastJob", 20)
	push("Metrics::SlowJob", 3)
	push("Metrics::FailJob", 4, sidekiq.Retry(0))
	for i := range 2 {
		if _, err := middleware.PushActiveJob(ctx, c, "Metrics::WelcomeJob", "metrics", []any{i}); err != nil {
			t.Fatal(err)
		}
	}

	out := sk.Ruby(t, db.URL, rubyMetricsView, testsuite.WithEnv("FERRY_PROCESSED=29"))
	var res struct {
		Totals     map[string]map[string]float64 `json:"totals"`
		HourTotals map[string]map[string]float64 `json:"hour_totals"`
		SlowHist   []int                         `json:"slow_hist"`
		Pages      map[string]webPage            `json:"pages"`
	}
	mustUnmarshalPlain(t, lastLine(out), &res)
	want := map[string][2]float64{ // p, f
		"Metrics::FastJob":    {20, 0},
		"Metrics::SlowJob":    {3, 0},
		"Metrics::FailJob":    {4, 4},
		"Metrics::WelcomeJob": {2, 0},
	}
	check := func(what string, totals map[string]map[string]float64) {
		t.Helper()
		if len(totals) != len(want) {
			t.Errorf("%s lists classes %v, want %d", what, totals, len(want))
		}
		for class, w := range want {
			got := totals[class]
			if got["p"] != w[0] || got["f"] != w[1] {
				t.Errorf("%s: %s p=%v f=%v, want p=%v f=%v", what, class, got["p"], got["f"], w[0], w[1])
			}
		}
		if ms := totals["Metrics::FailJob"]["ms"]; ms != 0 {
			t.Errorf("%s: failed runs added %v ms", what, ms)
		}
		if ms := totals["Metrics::SlowJob"]["ms"]; ms < 3*float64(slowRun.Milliseconds()) {
			t.Errorf("%s: Metrics::SlowJob ms = %v, want at least %d", what, ms, 3*slowRun.Milliseconds())
		}
	}
	check("Query#top_jobs(minutes: 5)", res.Totals)
	if sk.Major() >= 8 {
		check("Query#top_jobs(hours: 1)", res.HourTotals)
	}
	var slow, fast int
	for i, n := range res.SlowHist {
		if i >= 3 { // buckets from 45 ms up
			slow += n
		} else {
			fast += n
		}
	}
	if slow != 3 || fast != 0 {
		t.Errorf("Metrics::SlowJob histogram %v: %d runs at 45 ms or more, %d below; want 3 and 0", res.SlowHist, slow, fast)
	}

	for path, p := range res.Pages {
		if p.Status != 200 {
			t.Errorf("GET %s: status %d", path, p.Status)
		}
	}
	overview := res.Pages["/metrics"].Body
	for class, w := range want {
		cells := rowCells(overview, `value="`+class+`"`)
		if len(cells) < 3 || cells[1] != strconv.Itoa(int(w[0]-w[1])) || cells[2] != strconv.Itoa(int(w[1])) {
			t.Errorf("/metrics row of %s: %q, want success %v, failure %v", class, cells, w[0]-w[1], w[1])
		}
	}
	m := regexp.MustCompile(`id="hist-totals-chart">\s*\{"series":\[([0-9,]*)\]`).FindStringSubmatch(res.Pages["/metrics/slow"].Body)
	if m == nil {
		t.Fatalf("/metrics/Metrics::SlowJob has no histogram chart")
	}
	if got, want := "["+m[1]+"]", strings.ReplaceAll(fmt.Sprint(res.SlowHist), " ", ","); got != want {
		t.Errorf("/metrics/Metrics::SlowJob chart series %s, Query's histogram %s", got, want)
	}
}
