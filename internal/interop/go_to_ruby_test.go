package interop

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// rubyCapturePayload is a server middleware that exposes the payload hash being run as
// Thread.current[:ferry_job], and a fast scheduler poll (see below).
const rubyCapturePayload = `
class FerryCapture
  def call(_worker, job, _queue)
    Thread.current[:ferry_job] = job
    yield
  ensure
    Thread.current[:ferry_job] = nil
  end
end

ferry_server_option(:poll_interval_average, 1)
Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.add FerryCapture }
end
`

// rubyRecordJobs is the jobs file for the real sidekiq binary. RecordJob RPUSHes to
// ferry:results what it received: its arguments as ferry_typed, and (through a server
// middleware that exposes the payload hash) how Ruby read the payload's keys.
//
// Sidekiq's scheduler (6.4.1, 7.3 and 8.1 alike) waits 10 s + rand(5) s before its first
// poll unless poll_interval_average is set (scheduled.rb#initial_wait); setting it to 1
// makes the first poll come within 5 s and later ones every 0.5–1.5 s.
// (average_scheduled_poll_interval would not do: the 10 s initial wait still applies.)
const rubyRecordJobs = rubyTyped + rubyCapturePayload + `
class RecordJob
  include Sidekiq::Worker
  def perform(*args)
    job = Thread.current[:ferry_job]
    rec = {
      "jid" => jid, "args" => ferry_typed(args), "ran_at" => Time.now.to_f,
      "queue" => job["queue"], "retry" => ferry_typed(job["retry"]), "tags" => ferry_typed(job["tags"]),
      "created_at" => ferry_typed(job["created_at"]), "enqueued_at" => ferry_typed(job["enqueued_at"]),
      "keys" => job.keys.sort,
    }
    Sidekiq.redis { |c| c.rpush("ferry:results", JSON.generate(rec)) }
  end
end
`

// goPush is one job pushed from Go and what Ruby must see.
type goPush struct {
	name  string
	args  []any
	queue string
	retry any // typed tree of job["retry"]
	tags  any // typed tree of job["tags"]
	due   time.Time
}

// TestGoPushedJobsRunInRubySidekiq pushes jobs with Client.Push (every argument type,
// Queue, Retry, NoRetry, Extra), PushBulk and In, checks through Sidekiq::API (before any
// job runs) that Ruby sees sane latency, created_at and enqueued_at and the schedule time,
// then runs each release's real sidekiq binary and checks that each job ran once with exactly
// the arguments and types Go sent, and the scheduled one no earlier than it was due.
func TestGoPushedJobsRunInRubySidekiq(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testGoPushedJobsRunInRubySidekiq)
}

func testGoPushedJobsRunInRubySidekiq(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := t.Context()
	client := sidekiq.NewClient(db.Client, nil)

	rtrue := []any{"TrueClass"}
	noTags := []any{"NilClass"}
	pushes := []goPush{
		{name: "strings", args: []any{"plain", "", "quote \" backslash \\ slash / tab \t nl \n", "\x01\x1f\x7f"}},
		{name: "whole_floats", args: []any{float64(3), float64(0), math.Copysign(0, -1), float64(-2), 1e20, float64(1 << 53)}},
		{name: "floats", args: []any{1.5, 0.1, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, float32(0.1), float32(3)}},
		{name: "big_ints", args: []any{int64(1<<53 + 1), int64(-(1<<53 + 1)), int64(math.MaxInt64), int64(math.MinInt64), uint64(math.MaxUint64), int32(-7), uint8(255), 0}},
		{name: "json_number", args: []any{json.Number("123456789012345678901234567890"), json.Number("2.50"), json.Number("1e3")}},
		{name: "nil_bool", args: []any{nil, true, false}},
		{name: "nested", args: []any{
			map[string]any{"a": map[string]any{"b": []any{1, 2.0, nil, map[string]any{"c": "d"}}}, "e": []any{}, "f": map[string]any{}},
			[]any{[]any{}, []any{[]any{}}, []any{int64(1), "x", []float64{2, 2.5}}},
			map[string]int64{"big": 1<<53 + 1},
		}},
		{name: "unicode_html", args: []any{"héllo wörld ✓ 日本語 😀", "<script>alert('x&y')</script>", "\u2028\u2029", "a<b>&c"}},
		{name: "no_args", args: nil},
		{name: "queue_retry", args: []any{"critical"}, queue: "critical", retry: []any{"Integer", "3"}},
		{name: "no_retry_tags", args: []any{1}, retry: []any{"FalseClass"}, tags: []any{"Array", []any{[]any{"String", "go"}, []any{"String", "fërry"}}}},
	}
	opts := map[string][]sidekiq.PushOption{
		"queue_retry":   {sidekiq.Queue("critical"), sidekiq.Retry(3)},
		"no_retry_tags": {sidekiq.NoRetry(), sidekiq.Extra("tags", []string{"go", "fërry"})},
	}
	byJID := map[string]*goPush{}
	var order []string
	for i := range pushes {
		p := &pushes[i]
		jid, err := client.Push(ctx, "RecordJob", p.args, opts[p.name]...)
		if err != nil {
			t.Fatalf("%s: Push: %v", p.name, err)
		}
		byJID[jid] = p
		order = append(order, jid)
	}
	bulkArgs := [][]any{{1}, {2.0}, {"three", nil}, {map[string]any{"n": int64(1<<62 + 1)}}}
	jids, err := client.PushBulk(ctx, "RecordJob", bulkArgs, sidekiq.Queue("critical"))
	if err != nil {
		t.Fatalf("PushBulk: %v", err)
	}
	if len(jids) != len(bulkArgs) {
		t.Fatalf("PushBulk returned %d jids", len(jids))
	}
	for i, jid := range jids {
		p := &goPush{name: "bulk_" + strconv.Itoa(i), args: bulkArgs[i], queue: "critical"}
		byJID[jid] = p
		order = append(order, jid)
	}
	const delay = 2 * time.Second
	before := time.Now()
	jid, err := client.Push(ctx, "RecordJob", []any{"scheduled", 4.0}, sidekiq.In(delay))
	if err != nil {
		t.Fatalf("Push In: %v", err)
	}
	after := time.Now()
	scheduled := &goPush{name: "scheduled", args: []any{"scheduled", 4.0}, due: before.Add(delay)}
	byJID[jid] = scheduled
	for _, p := range byJID {
		if p.queue == "" {
			p.queue = "default"
		}
		if p.retry == nil {
			p.retry = rtrue
		}
		if p.tags == nil {
			p.tags = noTags
		}
	}

	// What Go wrote, parsed back, to compare Ruby's view of the timestamps with.
	stored := readAllJobs(t, db)
	if len(stored) != len(byJID) {
		t.Fatalf("Redis holds %d jobs, pushed %d", len(stored), len(byJID))
	}

	// Sidekiq::API before anything runs.
	out := sk.Ruby(t, db.URL, rubyTyped+`
res = {"now" => Time.now.to_f, "queues" => {}, "jobs" => {}, "scheduled" => {}}
Sidekiq::Queue.all.each do |q|
  res["queues"][q.name] = {"size" => q.size, "latency" => q.latency}
  q.each do |r|
    res["jobs"][r.jid] = {"queue" => r.queue, "class" => r.display_class, "args" => ferry_typed(r.args),
      "created_at" => r.created_at.to_f, "enqueued_at" => r.enqueued_at.to_f, "latency" => r.latency,
      "types" => [r["created_at"].class.name, r["enqueued_at"].class.name]}
  end
end
Sidekiq::ScheduledSet.new.each do |e|
  res["scheduled"][e.jid] = {"at" => e.at.to_f, "created_at" => e.created_at.to_f, "enqueued_at" => e.enqueued_at&.to_f,
    "args" => ferry_typed(e.args), "types" => [e["created_at"].class.name, e["enqueued_at"].class.name]}
end
puts JSON.generate(res)
`)
	type apiJob struct {
		Queue      string          `json:"queue"`
		Class      string          `json:"class"`
		Args       json.RawMessage `json:"args"`
		CreatedAt  json.Number     `json:"created_at"`
		EnqueuedAt *json.Number    `json:"enqueued_at"`
		Latency    json.Number     `json:"latency"`
		At         json.Number     `json:"at"`
		Types      []string        `json:"types"`
	}
	var api struct {
		Now    json.Number `json:"now"`
		Queues map[string]struct {
			Size    int         `json:"size"`
			Latency json.Number `json:"latency"`
		} `json:"queues"`
		Jobs      map[string]apiJob `json:"jobs"`
		Scheduled map[string]apiJob `json:"scheduled"`
	}
	mustUnmarshal(t, lastLine(out), &api)
	if q := api.Queues["default"]; q.Size != 10 {
		t.Errorf("Sidekiq::Queue(default).size = %d, want 10", q.Size)
	}
	if q := api.Queues["critical"]; q.Size != 5 {
		t.Errorf("Sidekiq::Queue(critical).size = %d, want 5", q.Size)
	}
	for name, q := range api.Queues {
		if l, _ := strconv.ParseFloat(q.Latency.String(), 64); l < 0 || l > 60 {
			t.Errorf("Sidekiq::Queue(%s).latency = %v s, want 0 to 60", name, l)
		}
	}
	if len(api.Jobs) != len(byJID)-1 || len(api.Scheduled) != 1 {
		t.Fatalf("Sidekiq::API sees %d queued and %d scheduled jobs, want %d and 1", len(api.Jobs), len(api.Scheduled), len(byJID)-1)
	}
	check := func(jid string, a apiJob) {
		p := byJID[jid]
		if p == nil {
			t.Errorf("Sidekiq::API shows unknown jid %s", jid)
			return
		}
		if got, want := rubyTree(t, a.Args), fromSent(p.args); !sameTree(got, want) {
			t.Errorf("%s: JobRecord#args\n  %s\nwant\n  %s", p.name, showTree(got), showTree(want))
		}
		created := rubyFloatTime(t, a.CreatedAt)
		requireRecent(t, p.name+" JobRecord#created_at", created)
		if !sameInstant(created, stored[jid].job.CreatedAt) {
			t.Errorf("%s: Ruby reads created_at as %v, Go wrote %v", p.name, created.UTC(), stored[jid].job.CreatedAt.UTC())
		}
		if a.Types[0] != "Float" {
			t.Errorf("%s: created_at is a Ruby %s, want Float", p.name, a.Types[0])
		}
	}
	for jid, a := range api.Jobs {
		check(jid, a)
		p := byJID[jid]
		if p == nil {
			continue
		}
		if a.Queue != p.queue || a.Class != "RecordJob" {
			t.Errorf("%s: JobRecord queue %q class %q", p.name, a.Queue, a.Class)
		}
		if a.EnqueuedAt == nil || a.Types[1] != "Float" {
			t.Errorf("%s: enqueued_at %v is a Ruby %s, want a Float", p.name, a.EnqueuedAt, a.Types[1])
			continue
		}
		enq := rubyFloatTime(t, *a.EnqueuedAt)
		requireRecent(t, p.name+" JobRecord#enqueued_at", enq)
		if !sameInstant(enq, stored[jid].job.EnqueuedAt) {
			t.Errorf("%s: Ruby reads enqueued_at as %v, Go wrote %v", p.name, enq.UTC(), stored[jid].job.EnqueuedAt.UTC())
		}
		if l, _ := strconv.ParseFloat(a.Latency.String(), 64); l < 0 || l > 60 {
			t.Errorf("%s: JobRecord#latency = %v s", p.name, l)
		}
	}
	if a, ok := api.Scheduled[jid]; !ok {
		t.Errorf("the In(%v) job is not in Sidekiq::ScheduledSet", delay)
	} else {
		check(jid, a)
		if a.EnqueuedAt != nil || a.Types[1] != "NilClass" {
			t.Errorf("scheduled job has enqueued_at %v", a.EnqueuedAt)
		}
		at := rubyFloatTime(t, a.At)
		if at.Before(before.Add(delay).Add(-time.Microsecond)) || at.After(after.Add(delay).Add(time.Microsecond)) {
			t.Errorf("SortedEntry#at = %v, want between %v and %v", at, before.Add(delay), after.Add(delay))
		}
		scheduled.due = at
	}

	// Now let Ruby run them.
	proc := sk.StartSidekiq(t, db.URL, rubyRecordJobs, "-q", "default", "-q", "critical", "-c", "4")
	results := waitResults(t, db.Client, "ferry:results", len(byJID), 45*time.Second, proc)
	type record struct {
		JID        string          `json:"jid"`
		Args       json.RawMessage `json:"args"`
		RanAt      json.Number     `json:"ran_at"`
		Queue      string          `json:"queue"`
		Retry      json.RawMessage `json:"retry"`
		Tags       json.RawMessage `json:"tags"`
		CreatedAt  json.RawMessage `json:"created_at"`
		EnqueuedAt json.RawMessage `json:"enqueued_at"`
		Keys       []string        `json:"keys"`
	}
	seen := map[string]bool{}
	for _, raw := range results {
		var r record
		mustUnmarshal(t, raw, &r)
		p := byJID[r.JID]
		if p == nil {
			t.Errorf("Ruby ran unknown jid %s", r.JID)
			continue
		}
		if seen[r.JID] {
			t.Errorf("%s ran twice", p.name)
		}
		seen[r.JID] = true
		if got, want := rubyTree(t, r.Args), fromSent(p.args); !sameTree(got, want) {
			t.Errorf("%s: Ruby's perform received\n  %s\nGo sent\n  %s", p.name, showTree(got), showTree(want))
		}
		if r.Queue != p.queue {
			t.Errorf("%s: ran from queue %q, want %q", p.name, r.Queue, p.queue)
		}
		if got := rubyTree(t, r.Retry); !sameTree(got, p.retry) {
			t.Errorf("%s: Ruby sees retry %s, want %s", p.name, showTree(got), showTree(p.retry))
		}
		if got := rubyTree(t, r.Tags); !sameTree(got, p.tags) {
			t.Errorf("%s: Ruby sees tags %s, want %s", p.name, showTree(got), showTree(p.tags))
		}
		for _, k := range []string{"class", "args", "jid", "queue", "retry", "created_at", "enqueued_at"} {
			if !slices.Contains(r.Keys, k) {
				t.Errorf("%s: payload Ruby ran lacks %q: %v", p.name, k, r.Keys)
			}
		}
		if slices.Contains(r.Keys, "at") {
			t.Errorf("%s: payload Ruby ran still has \"at\"", p.name)
		}
		// Go wrote float seconds; Ruby's poller re-pushed the scheduled job, so its
		// enqueued_at is Ruby's own: Integer milliseconds from 8.x.
		created := rubyTree(t, r.CreatedAt).([]any)
		if created[0] != "Float" {
			t.Errorf("%s: Ruby sees created_at %v; want the Float Go wrote", p.name, created)
		}
		enqBy := floatSeconds
		if p == scheduled {
			enqBy = sk
		}
		enq, ok := stampTime(enqBy, rubyTree(t, r.EnqueuedAt))
		if !ok {
			t.Errorf("%s: Ruby sees enqueued_at %s; want it as %s writes it", p.name, r.EnqueuedAt, enqBy.Version())
			continue
		}
		requireRecent(t, p.name+" enqueued_at as run", enq)
		if p == scheduled {
			ran := rubyFloatTime(t, r.RanAt)
			if ran.Before(p.due) {
				t.Errorf("scheduled job ran at %v, before it was due at %v", ran, p.due)
			}
			// Ruby's poller re-pushed it, so enqueued_at is Ruby's and not before the due time.
			if enq.Before(p.due.Add(-time.Millisecond)) {
				t.Errorf("scheduled job was enqueued at %v, before it was due at %v", enq, p.due)
			}
		}
	}
	for _, jid := range append(order, jid) {
		if !seen[jid] {
			t.Errorf("%s (jid %s) did not run", byJID[jid].name, jid)
		}
	}
}
