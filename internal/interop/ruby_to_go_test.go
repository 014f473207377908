package interop

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// storedJob is a payload read straight from Redis, with where it was found.
type storedJob struct {
	raw   string
	where string // "queue:<name>" or "schedule"
	score float64
	job   *sidekiq.Job
}

// readAllJobs parses every payload in every queue and in the schedule set, by jid.
func readAllJobs(t *testing.T, db *testsuite.RealRedisDB) map[string]*storedJob {
	t.Helper()
	ctx := t.Context()
	out := map[string]*storedJob{}
	add := func(raw, where string, score float64) {
		j, err := sidekiq.ParseJobString(raw)
		if err != nil {
			t.Fatalf("ParseJob of Ruby's payload in %s: %v\n%s", where, err, raw)
		}
		if _, dup := out[j.JID]; dup {
			t.Fatalf("jid %q found twice", j.JID)
		}
		out[j.JID] = &storedJob{raw: raw, where: where, score: score, job: j}
	}
	queues, err := db.Client.SMembers(ctx, "queues").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		raws, err := db.Client.LRange(ctx, "queue:"+q, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range raws {
			add(r, "queue:"+q, 0)
		}
	}
	zs, err := db.Client.ZRangeWithScores(ctx, "schedule", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range zs {
		add(z.Member.(string), "schedule", z.Score)
	}
	return out
}

var timeKeys = map[string]bool{"created_at": true, "enqueued_at": true, "failed_at": true, "retried_at": true}

// decodedTree is the typed tree of the whole payload as Ferry decoded it: every field and
// every Extra key, timestamps left out (they are compared as instants).
func decodedTree(t *testing.T, j *sidekiq.Job) any {
	t.Helper()
	m := map[string]any{}
	setStr := func(k, v string) {
		if v != "" {
			m[k] = []any{"String", v}
		}
	}
	setStr("class", j.Class)
	setStr("jid", j.JID)
	setStr("queue", j.Queue)
	setStr("wrapped", j.Wrapped)
	setStr("retry_queue", j.RetryQueue)
	setStr("error_class", j.ErrorClass)
	setStr("error_message", j.ErrorMessage)
	if j.RetryCount != nil {
		m["retry_count"] = []any{"Integer", strconv.Itoa(*j.RetryCount)}
	}
	if j.Retry.IsSet() {
		if n, ok := j.Retry.Count(); ok {
			m["retry"] = []any{"Integer", strconv.Itoa(n)}
		} else {
			var v any
			if err := json.Unmarshal([]byte(j.Retry.String()), &v); err != nil {
				t.Fatalf("Retry.String() = %q is not JSON", j.Retry.String())
			}
			m["retry"] = fromDecoded(v)
		}
	}
	args, err := j.ArgsSlice()
	if err != nil {
		t.Fatal(err)
	}
	m["args"] = fromDecoded(args)
	for k := range j.Extra {
		var v any
		if _, err := j.Get(k, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = fromDecoded(v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	entries := make([]any, 0, len(keys))
	for _, k := range keys {
		entries = append(entries, []any{[]any{"String", k}, m[k]})
	}
	return []any{"Hash", entries}
}

// withoutTimes drops the timestamp keys from a typed Hash tree and returns them apart.
func withoutTimes(tree any) (any, map[string]any) {
	n := tree.([]any)
	times := map[string]any{}
	var kept []any
	for _, e := range n[1].([]any) {
		kv := e.([]any)
		k := kv[0].([]any)
		if k[0] == "String" && timeKeys[k[1].(string)] {
			times[k[1].(string)] = kv[1]
			continue
		}
		kept = append(kept, e)
	}
	if kept == nil {
		kept = []any{}
	}
	return []any{"Hash", kept}, times
}

func jobTime(j *sidekiq.Job, key string) time.Time {
	switch key {
	case "created_at":
		return j.CreatedAt
	case "enqueued_at":
		return j.EnqueuedAt
	case "failed_at":
		return j.FailedAt
	}
	return j.RetriedAt
}

// rubyRecord is what the Ruby scripts print about each job they read back with
// Sidekiq::API: the whole payload as ferry_typed, its timestamps, and the API's view.
type rubyRecord struct {
	Item          json.RawMessage        `json:"item"`
	Times         map[string]json.Number `json:"times"`
	APICreatedAt  json.Number            `json:"api_created_at"`
	APIEnqueuedAt *json.Number           `json:"api_enqueued_at"`
	Score         *json.Number           `json:"score"`
}

// rubyReadBack is Ruby printing a rubyRecord for every job in every queue and in the
// schedule set, by jid.
const rubyReadBack = `
def ferry_record(r, score = nil)
  times = r.item.select { |k, _| %w[created_at enqueued_at failed_at retried_at].include?(k) }
  {"item" => ferry_typed(r.item), "times" => times, "api_created_at" => r.created_at.to_f,
   "api_enqueued_at" => r.enqueued_at&.to_f, "score" => score}
end
records = {}
Sidekiq::Queue.all.each { |q| q.each { |r| records[r.jid] = ferry_record(r) } }
Sidekiq::ScheduledSet.new.each { |e| records[e.jid] = ferry_record(e, e.score) }
`

// checkAgainstRuby asserts that Ferry decoded job exactly as Ruby's API reports it: the
// same typed value for every key, the same instants for every timestamp (which Ruby must
// have written as Floats, or as Integer milliseconds from 8.x), and the schedule score.
func checkAgainstRuby(t *testing.T, sk *testsuite.RubySidekiq, name string, sj *storedJob, rec rubyRecord) {
	t.Helper()
	j := sj.job
	rubyItem, rubyTimes := withoutTimes(rubyTree(t, rec.Item))
	goItem, _ := withoutTimes(decodedTree(t, j))
	if !sameTree(goItem, rubyItem) {
		t.Errorf("%s: Ferry decoded\n  %s\nRuby reports\n  %s", name, showTree(goItem), showTree(rubyItem))
	}
	for k, typed := range rubyTimes {
		rt, ok := stampTime(sk, typed)
		if !ok {
			t.Errorf("%s: Sidekiq %s wrote %s as %v", name, sk.Version(), k, typed)
			continue
		}
		if gt := jobTime(j, k); !sameInstant(gt, rt) {
			t.Errorf("%s: Ferry reads %s as %v, Ruby wrote %v", name, k, gt.UTC(), rt.UTC())
		}
	}
	for _, k := range []string{"created_at", "enqueued_at"} {
		_, inRuby := rubyTimes[k]
		if inGo := !jobTime(j, k).IsZero(); inGo != inRuby {
			t.Errorf("%s: %s present in Ruby's payload: %v, in Ferry's decoding: %v", name, k, inRuby, inGo)
		}
	}
	if at := rubyFloatTime(t, rec.APICreatedAt); !sameInstant(j.CreatedAt, at) {
		t.Errorf("%s: JobRecord#created_at = %v, Ferry's CreatedAt = %v", name, at.UTC(), j.CreatedAt.UTC())
	}
	requireRecent(t, name+" CreatedAt", j.CreatedAt)
	if rec.APIEnqueuedAt != nil {
		if at := rubyFloatTime(t, *rec.APIEnqueuedAt); !sameInstant(j.EnqueuedAt, at) {
			t.Errorf("%s: JobRecord#enqueued_at = %v, Ferry's EnqueuedAt = %v", name, at.UTC(), j.EnqueuedAt.UTC())
		}
		requireRecent(t, name+" EnqueuedAt", j.EnqueuedAt)
	}
	if rec.Score != nil {
		s, _ := strconv.ParseFloat(rec.Score.String(), 64)
		if s != sj.score {
			t.Errorf("%s: Ruby's score %v, Go's %v", name, s, sj.score)
		}
	}
	if _, ok := j.Extra["at"]; ok {
		t.Errorf(`%s: stored payload has "at"`, name)
	}
}

// TestRubyClientPayloadsDecodeInGo pushes jobs with Ruby's Sidekiq client (perform_async
// with every argument type, set(queue:/retry:), sidekiq_options, perform_in/perform_at,
// push_bulk with and without "at"), then checks that Ferry decodes each payload exactly as
// Ruby reports it, that DecodeArgs fills typed Go values without rounding, and that Ferry's
// re-encoding keeps every key's bytes and reads the same in Ruby.
func TestRubyClientPayloadsDecodeInGo(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyClientPayloadsDecodeInGo)
}

func testRubyClientPayloadsDecodeInGo(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)

	out := sk.Ruby(t, db.URL, rubyTyped+`
class HardJob; include Sidekiq::Worker; def perform(*a); end; end
class OptionsJob
  include Sidekiq::Worker
  sidekiq_options retry: 5, backtrace: 10, tags: ["alpha", "βeta"], retry_queue: "low", dead: false
  def perform(*a); end
end
Sidekiq.strict_args!(false) # strict args (a warning in 6.4.1, an error from 7.0) are not what this test is about

pushed = {}
cases = [
  ["strings", HardJob, {}, ["plain", "", "quote \" backslash \\ slash / tab \t nl \n cr \r", "\u0001\u001f\u007f"]],
  ["integers", HardJob, {}, [0, -1, 2**53 + 1, -(2**53 + 1), 2**63 - 1, -(2**63), 2**64 + 7, 10**30]],
  ["floats", HardJob, {}, [3.0, 1.5, -0.0, 0.1, 1.0e20, 1.0e-5, 2.0**53 + 2, 1.7976931348623157e308, 123456789.123456789, 5.0e-324]],
  ["nil_bool", HardJob, {}, [nil, true, false]],
  ["nested", HardJob, {}, [{"a" => {"b" => [1, 2.5, nil, {"c" => "d"}]}, "e" => [], "f" => {}}, [[], [[]], [1, "x", [2.0]]]]],
  ["unicode_html", HardJob, {}, ["héllo wörld ✓ 日本語 😀", "<script>alert('x&y')</script>", "\u2028\u2029", "a<b>&c"]],
  ["mixed", HardJob, {}, ["s", 2**53 + 1, 3.0, nil, true, {"a" => [1, 2.5]}, "<>&"]],
  ["no_args", HardJob, {}, []],
  ["set_queue", HardJob, {queue: "critical"}, ["to critical"]],
  ["set_retry_false", HardJob, {retry: false}, [1]],
  ["set_retry_zero", HardJob, {retry: 0}, [1]],
  ["set_retry_7", HardJob, {retry: 7}, [1]],
  ["sidekiq_options", OptionsJob, {}, ["opts"]],
]
cases.each do |name, klass, opts, args|
  jid = opts.empty? ? klass.perform_async(*args) : klass.set(opts).perform_async(*args)
  pushed[name] = {"jid" => jid, "args" => ferry_typed(args)}
end
pushed["perform_in"] = {"jid" => HardJob.perform_in(3600, "later", 2.0), "args" => ferry_typed(["later", 2.0])}
pushed["perform_at"] = {"jid" => HardJob.perform_at(Time.now + 7200, {"k" => [1]}), "args" => ferry_typed([{"k" => [1]}])}
pushed["set_queue_perform_in"] = {"jid" => HardJob.set(queue: "critical").perform_in(60, 1), "args" => ferry_typed([1])}
bulk = [[1], [2.0], ["three", nil]]
Sidekiq::Client.push_bulk("class" => HardJob, "args" => bulk).each_with_index do |jid, i|
  pushed["bulk_#{i}"] = {"jid" => jid, "args" => ferry_typed(bulk[i])}
end
sched = [[10], [20.5]]
now = Time.now.to_f
Sidekiq::Client.push_bulk("class" => "HardJob", "queue" => "bulk", "args" => sched, "at" => [now + 600, now + 1200]).each_with_index do |jid, i|
  pushed["bulk_at_#{i}"] = {"jid" => jid, "args" => ferry_typed(sched[i])}
end
`+rubyReadBack+`
puts JSON.generate({"pushed" => pushed, "records" => records, "now" => Time.now.to_f})
`)
	var report struct {
		Pushed map[string]struct {
			JID  string          `json:"jid"`
			Args json.RawMessage `json:"args"`
		} `json:"pushed"`
		Records map[string]rubyRecord `json:"records"`
		Now     json.Number           `json:"now"`
	}
	mustUnmarshal(t, lastLine(out), &report)
	stored := readAllJobs(t, db)
	if len(stored) != len(report.Pushed) || len(report.Records) != len(report.Pushed) {
		t.Fatalf("Ruby pushed %d jobs and read back %d; Go found %d", len(report.Pushed), len(report.Records), len(stored))
	}
	rubyNow := rubyFloatTime(t, report.Now)

	wantWhere := map[string]string{
		"set_queue": "queue:critical", "perform_in": "schedule", "perform_at": "schedule",
		"set_queue_perform_in": "schedule", "bulk_at_0": "schedule", "bulk_at_1": "schedule",
	}
	var pairs []roundTrip
	for name, p := range report.Pushed {
		sj, ok := stored[p.JID]
		if !ok {
			t.Errorf("%s: jid %s not found by Go", name, p.JID)
			continue
		}
		j := sj.job
		where := wantWhere[name]
		if where == "" {
			where = "queue:default"
		}
		if sj.where != where {
			t.Errorf("%s: found in %s, want %s", name, sj.where, where)
		}
		if j.JID != p.JID {
			t.Errorf("%s: JID = %q, want %q", name, j.JID, p.JID)
		}
		args, err := j.ArgsSlice()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fromDecoded(args), rubyTree(t, p.Args); !sameTree(got, want) {
			t.Errorf("%s: Ferry decoded args\n  %s\nRuby passed\n  %s", name, showTree(got), showTree(want))
		}
		checkAgainstRuby(t, sk, name, sj, report.Records[p.JID])
		if sj.where == "schedule" {
			if !j.EnqueuedAt.IsZero() {
				t.Errorf("%s: scheduled payload has enqueued_at %v", name, j.EnqueuedAt)
			}
			at := floatTime(sj.score)
			if d := at.Sub(rubyNow); d < 50*time.Second || d > 2*time.Hour+time.Minute {
				t.Errorf("%s: scheduled %v after Ruby's now, want 1 minute to 2 hours", name, d)
			}
		}

		for _, f := range []sidekiq.TimeFormat{sidekiq.TimeSeconds, sidekiq.TimeMillis} {
			re := reencode(t, j, f)
			requireSameBytes(t, name+" ("+f.String()+")", []byte(sj.raw), re)
		}
		pairs = append(pairs, roundTrip{id: name, orig: []byte(sj.raw), reen: reencode(t, j, sidekiq.TimeSeconds)})
	}

	// Field-specific expectations that do not come from Ruby's own report.
	byName := func(name string) *sidekiq.Job { return stored[report.Pushed[name].JID].job }
	if j := byName("set_queue"); j.Queue != "critical" {
		t.Errorf("set(queue:) job has Queue %q", j.Queue)
	}
	for name, want := range map[string]string{"strings": "true", "set_retry_false": "false", "set_retry_zero": "0", "set_retry_7": "7", "sidekiq_options": "5"} {
		if got := byName(name).Retry.String(); got != want {
			t.Errorf("%s: Retry = %s, want %s", name, got, want)
		}
	}
	if r := byName("set_retry_zero").Retry; r.Max(25) != 0 || !r.Enabled() {
		t.Errorf(`"retry":0 read as Max %d, Enabled %v; want 0 retries, straight to dead`, r.Max(25), r.Enabled())
	}
	if r := byName("set_retry_false").Retry; r.Enabled() {
		t.Errorf(`"retry":false read as Enabled`)
	}
	if j := byName("sidekiq_options"); j.RetryQueue != "low" || j.BuryOnFailure() {
		t.Errorf("sidekiq_options: RetryQueue %q, BuryOnFailure() %v; want low, false", j.RetryQueue, j.BuryOnFailure())
	}
	if j := byName("bulk_at_0"); j.Queue != "bulk" {
		t.Errorf("push_bulk with queue bulk: Queue %q", j.Queue)
	}

	// DecodeArgs into typed Go destinations.
	var (
		s    string
		big  int64
		f    float64
		nilp *string = new(string)
		b    bool
		m    map[string]any
		html string
	)
	if err := byName("mixed").DecodeArgs(&s, &big, &f, &nilp, &b, &m, &html); err != nil {
		t.Fatal(err)
	}
	if s != "s" || big != 1<<53+1 || f != 3.0 || nilp != nil || !b || html != "<>&" {
		t.Errorf("DecodeArgs = %q %d %v %v %v %q", s, big, f, nilp, b, html)
	}
	if got := fmt.Sprint(m["a"]); got != "[1 2.5]" {
		t.Errorf("DecodeArgs map = %v", m)
	}
	if n, ok := m["a"].([]any)[0].(json.Number); !ok || n != "1" {
		t.Errorf("numbers inside an any are json.Number, got %T", m["a"].([]any)[0])
	}
	var ints [6]int64
	var huge, tail json.Number
	if err := byName("integers").DecodeArgs(&ints[0], &ints[1], &ints[2], &ints[3], &ints[4], &ints[5], &huge, &tail); err != nil {
		t.Fatal(err)
	}
	wantInts := [6]int64{0, -1, 1<<53 + 1, -(1<<53 + 1), math.MaxInt64, math.MinInt64}
	if ints != wantInts {
		t.Errorf("integer args = %d, want %d", ints, wantInts)
	}
	if huge != "18446744073709551623" || tail != "1000000000000000000000000000000" {
		t.Errorf("2**64+7, 10**30 = %s, %s", huge, tail)
	}
	var floats [10]float64
	dst := make([]any, len(floats))
	for i := range floats {
		dst[i] = &floats[i]
	}
	if err := byName("floats").DecodeArgs(dst...); err != nil {
		t.Fatal(err)
	}
	wantFloats := []float64{3.0, 1.5, math.Copysign(0, -1), 0.1, 1e20, 1e-5, 1<<53 + 2, math.MaxFloat64, 123456789.123456789, 5e-324}
	for i, w := range wantFloats {
		if math.Float64bits(floats[i]) != math.Float64bits(w) {
			t.Errorf("float arg %d = %v, want %v", i, floats[i], w)
		}
	}
	var strs [4]string
	if err := byName("strings").DecodeArgs(&strs[0], &strs[1], &strs[2], &strs[3]); err != nil {
		t.Fatal(err)
	}
	if strs[2] != "quote \" backslash \\ slash / tab \t nl \n cr \r" || strs[3] != "\x01\x1f\x7f" {
		t.Errorf("strings = %q", strs)
	}
	compareInRuby(t, sk, db, pairs)
}

// rubyAJJob is the ActiveJob class of the ActiveJob tests. perform records what it
// received, with the keyword arguments apart, so a payload can be checked by running it.
const rubyAJJob = `
class MyAjJob < ActiveJob::Base
  queue_as :mailers
  def perform(*args, **kw)
    $ferry_performed = ferry_typed([args, kw])
  end
end
`

// TestRubyActiveJobPayloadsDecodeInGo enqueues ActiveJob jobs through the Sidekiq adapter
// each release uses (Rails 6.1's with 6.4.1, Sidekiq's own with 7.3.10 and 8.1.7:
// perform_later with symbols, symbol-key hashes, keyword arguments, a big integer, a Float
// and a Time; set(wait:); set(queue:)), checks what Ferry decodes (the release's wrapper
// class, wrapped class, handler name, envelope, the _aj_* markers), and then has Ruby run
// the job, through the class the payload names, from both the original payload and Ferry's
// re-encoding: perform must receive the same arguments, symbols and keyword split included.
func TestRubyActiveJobPayloadsDecodeInGo(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyActiveJobPayloadsDecodeInGo)
}

func testRubyActiveJobPayloadsDecodeInGo(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)

	out := sk.Ruby(t, db.URL, rubyTyped+rubyAJJob+`
def report(job, positional, kw)
  {"jid" => job.provider_job_id, "job_id" => job.job_id, "queue" => job.queue_name,
   "performs" => ferry_typed([positional, kw])}
end
pos1 = [1, "s", :sym, {a: 1, "b" => 2, nested: {deep: [1, 2.5, nil]}}, 2**70, 3.0, Time.utc(2024, 1, 2, 3, 4, 5)]
kw1 = {kw1: "x", kw2: {inner: true}}
jobs = {
  "perform_later" => report(MyAjJob.perform_later(*pos1, **kw1), pos1, kw1),
  "set_wait" => report(MyAjJob.set(wait: 3600).perform_later("later", flag: false), ["later"], {flag: false}),
  "set_queue" => report(MyAjJob.set(queue: "critical").perform_later({"str" => :symval}), [{"str" => :symval}], {}),
}
`+rubyReadBack+`
puts JSON.generate({"jobs" => jobs, "records" => records, "now" => Time.now.to_f})
`, testsuite.WithActiveJob())
	var report struct {
		Jobs map[string]struct {
			JID      string          `json:"jid"`
			JobID    string          `json:"job_id"`
			Queue    string          `json:"queue"`
			Performs json.RawMessage `json:"performs"`
		} `json:"jobs"`
		Records map[string]rubyRecord `json:"records"`
		Now     json.Number           `json:"now"`
	}
	mustUnmarshal(t, lastLine(out), &report)
	stored := readAllJobs(t, db)
	if len(stored) != 3 || len(report.Jobs) != 3 {
		t.Fatalf("Ruby enqueued %d jobs, Go found %d", len(report.Jobs), len(stored))
	}
	rubyNow := rubyFloatTime(t, report.Now)
	wantWhere := map[string]string{"perform_later": "queue:mailers", "set_wait": "schedule", "set_queue": "queue:critical"}
	// The payload class each release's adapter writes (lib/active_job/queue_adapters/
	// sidekiq_adapter.rb: Rails 6.1's and 7.3.10's enqueue through JobWrapper, 8.1.7's through
	// Sidekiq::ActiveJob::Wrapper).
	wrapper := sidekiq.ActiveJobWrapperClass
	if sk.Major() >= 8 {
		wrapper = sidekiq.ActiveJobWrapperClass8
	}

	var pairs []roundTrip
	for name, r := range report.Jobs {
		sj, ok := stored[r.JID]
		if !ok {
			t.Fatalf("%s: provider_job_id %q not found by Go", name, r.JID)
		}
		j := sj.job
		if sj.where != wantWhere[name] {
			t.Errorf("%s: found in %s, want %s", name, sj.where, wantWhere[name])
		}
		if j.Class != wrapper || !j.IsActiveJob() {
			t.Errorf("%s: Class = %q, IsActiveJob %v; want %q", name, j.Class, j.IsActiveJob(), wrapper)
		}
		if j.Wrapped != "MyAjJob" || j.HandlerName() != "MyAjJob" {
			t.Errorf("%s: Wrapped = %q, HandlerName() = %q, want MyAjJob", name, j.Wrapped, j.HandlerName())
		}
		if j.Queue != r.Queue {
			t.Errorf("%s: Queue = %q, ActiveJob queue_name %q", name, j.Queue, r.Queue)
		}
		if j.Retry.String() != "true" {
			t.Errorf("%s: Retry = %s, want true (the wrapper's default)", name, j.Retry)
		}
		checkAgainstRuby(t, sk, name, sj, report.Records[r.JID])

		var env struct {
			JobClass      string            `json:"job_class"`
			JobID         string            `json:"job_id"`
			ProviderJobID *string           `json:"provider_job_id"`
			QueueName     string            `json:"queue_name"`
			Arguments     []json.RawMessage `json:"arguments"`
			Executions    json.Number       `json:"executions"`
			EnqueuedAt    string            `json:"enqueued_at"`
		}
		if err := j.DecodeArgs(&env); err != nil {
			t.Fatalf("%s: envelope: %v", name, err)
		}
		if env.JobClass != "MyAjJob" || env.JobID != r.JobID || env.ProviderJobID != nil || env.QueueName != r.Queue || env.Executions != "0" {
			t.Errorf("%s: envelope = %+v", name, env)
		}
		if at, err := time.Parse(time.RFC3339, env.EnqueuedAt); err != nil {
			t.Errorf("%s: envelope enqueued_at %q: %v", name, env.EnqueuedAt, err)
		} else {
			requireRecent(t, name+" envelope enqueued_at", at)
		}
		if sj.where == "schedule" {
			at := floatTime(sj.score)
			if d := at.Sub(rubyNow); d < 3590*time.Second || d > 3601*time.Second {
				t.Errorf("%s: scheduled %v after Ruby's now, want 1 hour", name, d)
			}
		}
		pairs = append(pairs, roundTrip{id: name, orig: []byte(sj.raw), reen: reencode(t, j, sidekiq.TimeSeconds)})
		requireSameBytes(t, name, []byte(sj.raw), pairs[len(pairs)-1].reen)
	}

	// The _aj_* markers as Go sees them in the main job's arguments.
	j := stored[report.Jobs["perform_later"].JID].job
	var env struct {
		Arguments []any `json:"arguments"`
	}
	if err := j.DecodeArgs(&env); err != nil {
		t.Fatal(err)
	}
	a := env.Arguments
	if len(a) != 8 {
		t.Fatalf("arguments = %v, want 7 positional + the keyword hash", a)
	}
	sym, _ := a[2].(map[string]any)
	if sym["_aj_serialized"] != "ActiveJob::Serializers::SymbolSerializer" || sym["value"] != "sym" {
		t.Errorf("symbol argument = %v", a[2])
	}
	h, _ := a[3].(map[string]any)
	if keys := fmt.Sprint(h["_aj_symbol_keys"]); keys != "[a nested]" {
		t.Errorf("_aj_symbol_keys = %s, want [a nested] (\"b\" is a String key)", keys)
	}
	if a[4] != json.Number("1180591620717411303424") || a[5] != json.Number("3.0") {
		t.Errorf("2**70, 3.0 decoded as %#v, %#v", a[4], a[5])
	}
	if tm, _ := a[6].(map[string]any); tm["_aj_serialized"] != "ActiveJob::Serializers::TimeSerializer" {
		t.Errorf("Time argument = %v", a[6])
	}
	kw, _ := a[7].(map[string]any)
	if keys := fmt.Sprint(kw["_aj_ruby2_keywords"]); keys != "[kw1 kw2]" {
		t.Errorf("keyword hash = %v, want _aj_ruby2_keywords [kw1 kw2]", a[7])
	}

	compareInRuby(t, sk, db, pairs, testsuite.WithActiveJob())

	// Run each job in Ruby from the original bytes and from Ferry's re-encoding.
	out = sk.Ruby(t, db.URL, rubyTyped+rubyAJJob+`
def run(raw)
  $ferry_performed = nil
  job = JSON.parse(raw)
  Object.const_get(job["class"]).new.perform(*job["args"])
  $ferry_performed
end
orig = Sidekiq.redis { |c| c.hgetall("ferry:original") }
re = Sidekiq.redis { |c| c.hgetall("ferry:reencoded") }
res = orig.keys.reject { |k| k.start_with?("control") }.to_h { |k| [k, {"orig" => run(orig[k]), "re" => run(re[k])}] }
puts JSON.generate(res)
`, testsuite.WithActiveJob())
	var runs map[string]struct{ Orig, Re json.RawMessage }
	mustUnmarshal(t, lastLine(out), &runs)
	if len(runs) != len(report.Jobs) {
		t.Fatalf("Ruby ran %d jobs, want %d", len(runs), len(report.Jobs))
	}
	for name, r := range report.Jobs {
		want := rubyTree(t, r.Performs)
		if got := rubyTree(t, runs[name].Orig); !sameTree(got, want) {
			t.Errorf("%s: from Ruby's own payload perform got\n  %s\nwant\n  %s", name, showTree(got), showTree(want))
		}
		if got := rubyTree(t, runs[name].Re); !sameTree(got, want) {
			t.Errorf("%s: from Ferry's re-encoding perform got\n  %s\nwant\n  %s", name, showTree(got), showTree(want))
		}
	}
}
