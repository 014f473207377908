package sidekiq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// metricsEvent is one job run fed to both Sidekiq's ExecutionTracker and Ferry's recorder.
type metricsEvent struct {
	Class  string `json:"class"`
	MS     int64  `json:"ms"`
	Failed bool   `json:"failed"`
	Times  int    `json:"times"`
}

var metricsEvents = []metricsEvent{
	{Class: "HardJob", MS: 5, Times: 1},
	{Class: "HardJob", MS: 19, Times: 1},
	{Class: "HardJob", MS: 20, Times: 1},
	{Class: "HardJob", MS: 25, Times: 1},
	{Class: "HardJob", MS: 400000, Times: 1}, // the "Slow" bucket
	{Class: "HardJob", MS: 3000, Failed: true, Times: 1},
	{Class: "Mailers::WelcomeJob", MS: 1200, Times: 2},
	{Class: "FailOnly", MS: 10, Failed: true, Times: 2},
	{Class: "Zero", MS: 0, Times: 1},
	{Class: "Émail::Job", MS: 70000, Times: 1},
	{Class: "Busy", MS: 1, Times: 70000}, // past u16: the histogram counter saturates at 65535
}

// rubyTrack feeds FERRY_EVENTS to Sidekiq's own ExecutionTracker, with the monotonic clock
// it reads made to step by each event's milliseconds, and flushes at FERRY_NOW.
const rubyTrack = `
require "sidekiq/component"
require "sidekiq/job_retry"
require "sidekiq/metrics/tracking"
$ferry_mono = []
module FerryClock
  def clock_gettime(id, *unit)
    return $ferry_mono.shift if id == ::Process::CLOCK_MONOTONIC && unit == [:millisecond] && !$ferry_mono.empty?
    super
  end
end
::Process.singleton_class.prepend(FerryClock)
tracker = Sidekiq::Metrics::ExecutionTracker.new(Sidekiq.default_configuration)
JSON.parse(ENV.fetch("FERRY_EVENTS")).each do |e|
  e["times"].times do
    $ferry_mono = [1_000_000, 1_000_000 + e["ms"]]
    begin
      tracker.track("default", e["class"]) { raise "failed" if e["failed"] }
    rescue RuntimeError
    end
  end
end
tracker.flush(Time.at(Integer(ENV.fetch("FERRY_NOW"))))
puts "flushed"
`

// rubyQueryMetrics reads the metrics back with Sidekiq::Metrics::Query and the Web UI's
// Metrics pages (the overview and HardJob's own).
const rubyQueryMetrics = `
require "sidekiq/metrics/query"
require "sidekiq/web"
require "rack/mock"
now = Time.at(Integer(ENV.fetch("FERRY_NOW")))
q = Sidekiq::Metrics::Query.new(now: now)
top = q.top_jobs(minutes: 5).job_results.transform_values { |jr| jr.totals }
job = q.for_job("HardJob", minutes: 5).job_results["HardJob"]
res = {"top" => top, "hist" => job.hist.values.map(&:reverse), "job_totals" => job.totals}
res["top_hours"] = q.top_jobs(hours: 1).job_results.transform_values { |jr| jr.totals } if FERRY_SIDEKIQ_MAJOR >= 8
web = Rack::MockRequest.new(Sidekiq::Web)
res["pages"] = ["/metrics", "/metrics/HardJob"].to_h do |path|
  r = web.get(path, "rack.session" => {})
  [path, {"status" => r.status, "body" => r.body}]
end
puts JSON.generate(res)
`

// TestExecMetricsMatchSidekiqTracker feeds the same job runs to Sidekiq's own
// ExecutionTracker (7.3.10 and 8.1.7, in a Ruby process with its clock stepped) and to
// Ferry's recorder, flushes both at the same instant into two Redis databases, and requires
// the same keys, types, TTLs and values byte for byte: hash fields, and the BITFIELD
// strings of the histograms (saturated u16 included). Then Sidekiq::Metrics::Query and the
// Web UI's Metrics pages read Ferry's data back: totals per class, HardJob's histogram,
// 8.x's 10-minute rollup, the overview table and the job page's histogram chart.
func TestExecMetricsMatchSidekiqTracker(t *testing.T) {
	t.Parallel()
	for _, sk := range []*testsuite.RubySidekiq{testsuite.Sidekiq7, testsuite.Sidekiq8} {
		t.Run(sk.String(), func(t *testing.T) {
			t.Parallel()
			sk.Require(t)
			testExecMetricsMatchSidekiqTracker(t, sk)
		})
	}
}

func testExecMetricsMatchSidekiqTracker(t *testing.T, sk *testsuite.RubySidekiq) {
	ctx := context.Background()
	rubyDB, goDB := testsuite.RealRedis(t), testsuite.RealRedis(t)
	now := time.Now().Truncate(time.Second)
	events, _ := json.Marshal(metricsEvents)
	env := testsuite.WithEnv("FERRY_EVENTS="+string(events), "FERRY_NOW="+strconv.FormatInt(now.Unix(), 10))
	if out := sk.Ruby(t, rubyDB.URL, rubyTrack, env); strings.TrimSpace(out) != "flushed" {
		t.Fatalf("Ruby's tracker printed %q", out)
	}

	m := sidekiq.NewExecMetricsForTest(sk.Major(), 0)
	for _, e := range metricsEvents {
		for range e.Times {
			m.Record(e.Class, time.Duration(e.MS)*time.Millisecond, e.Failed)
		}
	}
	if err := m.Flush(ctx, goDB.Client, "", now); err != nil {
		t.Fatalf("Flush: %v", err)
	}

	want, got := dumpDB(t, rubyDB), dumpDB(t, goDB)
	if len(want) < 4 {
		t.Fatalf("Sidekiq's tracker wrote only %v", want)
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("Sidekiq wrote %s (%s), Ferry did not", k, w.typ)
		case g.typ != w.typ || g.value != w.value:
			t.Errorf("%s: Ferry wrote %s %s\nSidekiq wrote %s %s", k, g.typ, g.value, w.typ, w.value)
		case g.ttl > w.ttl || g.ttl < w.ttl-30*time.Second:
			t.Errorf("%s: TTL %v, Sidekiq's %v", k, g.ttl, w.ttl)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("Ferry wrote %s (%s %s), Sidekiq did not", k, g.typ, g.value)
		}
	}

	// Ferry's data, read by Sidekiq.
	out := sk.Ruby(t, goDB.URL, rubyQueryMetrics, env)
	var res struct {
		Top       map[string]map[string]float64 `json:"top"`
		TopHours  map[string]map[string]float64 `json:"top_hours"`
		Hist      [][]int                       `json:"hist"`
		JobTotals map[string]float64            `json:"job_totals"`
		Pages     map[string]struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		} `json:"pages"`
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	totals := map[string]map[string]float64{}
	var hardHist [26]int
	for _, e := range metricsEvents {
		c := totals[e.Class]
		if c == nil {
			c = map[string]float64{"p": 0, "f": 0, "ms": 0}
			totals[e.Class] = c
		}
		c["p"] += float64(e.Times)
		if e.Failed {
			c["f"] += float64(e.Times)
		} else {
			c["ms"] += float64(e.MS) * float64(e.Times)
			if e.Class == "HardJob" {
				hardHist[bucketOf(e.MS)] += e.Times
			}
		}
	}
	checkTotals := func(what string, got map[string]map[string]float64) {
		t.Helper()
		for class, w := range totals {
			for metric, v := range w {
				if got[class][metric] != v {
					t.Errorf("%s: %s %s = %v, want %v", what, class, metric, got[class][metric], v)
				}
			}
		}
	}
	checkTotals("Query#top_jobs(minutes: 5)", res.Top)
	if sk.Major() >= 8 {
		checkTotals("Query#top_jobs(hours: 1)", res.TopHours)
	}
	var sum [26]int
	for _, minute := range res.Hist {
		for i, n := range minute {
			if i < 26 {
				sum[i] += n
			}
		}
	}
	if sum != hardHist {
		t.Errorf("Query#for_job(HardJob) histogram %v, want %v", sum, hardHist)
	}

	for path, p := range res.Pages {
		if p.Status != 200 {
			t.Errorf("GET %s: status %d", path, p.Status)
		}
	}
	overview := res.Pages["/metrics"].Body
	for class, w := range totals {
		cells := metricsRow(overview, class)
		if len(cells) < 3 {
			t.Errorf("/metrics has no row for %s", class)
			continue
		}
		// number_with_delimiter writes 70000 as "70,000".
		if got, want := strings.ReplaceAll(cells[1], ",", ""), strconv.Itoa(int(w["p"]-w["f"])); got != want {
			t.Errorf("/metrics %s: Success %q, want %s", class, cells[1], want)
		}
		if got, want := strings.ReplaceAll(cells[2], ",", ""), strconv.Itoa(int(w["f"])); got != want {
			t.Errorf("/metrics %s: Failure %q, want %s", class, cells[2], want)
		}
	}
	m2 := regexp.MustCompile(`id="hist-totals-chart">\s*\{"series":\[([0-9,]*)\]`).FindStringSubmatch(res.Pages["/metrics/HardJob"].Body)
	if m2 == nil {
		t.Errorf("/metrics/HardJob has no histogram chart data")
	} else if got := "[" + m2[1] + "]"; got != strings.ReplaceAll(fmt.Sprint(hardHist), " ", ",") {
		t.Errorf("/metrics/HardJob histogram chart %s, want %v", got, hardHist)
	}
}

// bucketOf is Sidekiq's histogram bucket of a run of ms milliseconds, from its table.
func bucketOf(ms int64) int {
	bounds := []int64{20, 30, 45, 65, 100, 150, 225, 335, 500, 750, 1100, 1700, 2500, 3800, 5750,
		8500, 13000, 20000, 30000, 45000, 65000, 100000, 150000, 225000, 335000}
	for i, b := range bounds {
		if ms < b {
			return i
		}
	}
	return len(bounds)
}

// storedKey is one key of a dump: its type, TTL and value (a hash as sorted field=value
// lines, a string as Go-quoted bytes).
type storedKey struct {
	typ, value string
	ttl        time.Duration
}

func dumpDB(t *testing.T, db *testsuite.RealRedisDB) map[string]storedKey {
	t.Helper()
	ctx := context.Background()
	out := map[string]storedKey{}
	for _, k := range db.Client.Keys(ctx, "*").Val() {
		s := storedKey{typ: db.Client.Type(ctx, k).Val(), ttl: db.Client.TTL(ctx, k).Val()}
		switch s.typ {
		case "hash":
			h := db.Client.HGetAll(ctx, k).Val()
			var lines []string
			for f, v := range h {
				lines = append(lines, f+"="+v)
			}
			slices.Sort(lines)
			s.value = strings.Join(lines, " ")
		case "string":
			s.value = strconv.Quote(db.Client.Get(ctx, k).Val())
		}
		out[k] = s
	}
	return out
}

// metricsRow is the text of the cells of the /metrics table row of class.
func metricsRow(body, class string) []string {
	i := strings.Index(body, `value="`+class+`"`)
	if i < 0 {
		return nil
	}
	row := body[i:]
	if end := strings.Index(row, "</tr>"); end >= 0 {
		row = row[:end]
	}
	cells := []string{class}
	for _, part := range strings.Split(row, "<td")[1:] {
		if j := strings.IndexByte(part, '>'); j >= 0 {
			part = part[j+1:]
		}
		if j := strings.Index(part, "</td>"); j >= 0 {
			part = part[:j]
		}
		cells = append(cells, strings.TrimSpace(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(part, "")))
	}
	return cells
}
