package middleware_test

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/activejob"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// The payload Rails 6.1.7 + Sidekiq 6.4.1 wrote in wire-format.md §5.1, plus the other
// serializers as Rails 6.1 writes them (checked with ActiveJob::Arguments.serialize).
const railsPayload = `{"retry":true,"queue":"mailers","class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"MyAjJob","args":[{"job_class":"MyAjJob","job_id":"0f9ff7b7-a93e-4dc1-bb52-7cfa84fa7f60","provider_job_id":null,"queue_name":"mailers","priority":5,"arguments":[1,"s",{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"sym"},{"a":1,"b":2,"_aj_symbol_keys":["b"]},{"_aj_serialized":"ActiveJob::Serializers::TimeSerializer","value":"2024-01-02T03:04:05.123456000Z"},{"_aj_serialized":"ActiveJob::Serializers::TimeWithZoneSerializer","value":"2024-01-02T03:04:05.000000000-05:00"},{"_aj_serialized":"ActiveJob::Serializers::DateSerializer","value":"2024-02-29"},{"_aj_serialized":"ActiveJob::Serializers::DateTimeSerializer","value":"2024-01-02T03:04:05.000000000+02:00"},{"_aj_serialized":"ActiveJob::Serializers::DurationSerializer","value":183600,"parts":[[{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"days"},2],[{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"hours"},3]]},"1.25",{"_aj_serialized":"ActiveJob::Serializers::ModuleSerializer","value":"String"},{"_aj_globalid":"gid://ferry/User/7"},{"k":[1.5,null,true,12345678901234567890],"_aj_hash_with_indifferent_access":true},{"_aj_serialized":"ActiveJob::Serializers::BigDecimalSerializer","value":"0.1"},{"_aj_serialized":"ActiveJob::Serializers::RangeSerializer","begin":1,"end":5,"exclude_end":true},{"_aj_serialized":"MoneySerializer","cents":100,"currency":"EUR"},{"kw1":"x","_aj_ruby2_keywords":["kw1"]}],"executions":0,"exception_executions":{},"locale":"en","timezone":null,"enqueued_at":"2026-11-22T13:07:38Z"}],"jid":"391f4789fa2332a9350e8465","created_at":1795352858.6961088,"enqueued_at":1795352858.6963167}`

func TestDecodeActiveJobRails61(t *testing.T) {
	t.Parallel()
	job, err := sidekiq.ParseJob([]byte(railsPayload))
	if err != nil {
		t.Fatal(err)
	}
	a, err := middleware.DecodeActiveJob(job)
	if err != nil {
		t.Fatal(err)
	}
	est := time.FixedZone("", -5*3600)
	plus2 := time.FixedZone("", 2*3600)
	want := []any{
		int64(1), "s", activejob.Symbol("sym"),
		map[string]any{"a": int64(1), "b": int64(2)},
		time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 0, est),
		activejob.Date{Year: 2024, Month: time.February, Day: 29},
		time.Date(2024, 1, 2, 3, 4, 5, 0, plus2),
		activejob.Duration{Seconds: 183600, Parts: []activejob.DurationPart{{Unit: "days", Amount: 2}, {Unit: "hours", Amount: 3}}},
		"1.25", // Rails 6.1 writes BigDecimal as a plain string
		activejob.Module("String"),
		activejob.GlobalID("gid://ferry/User/7"),
		map[string]any{"k": []any{1.5, nil, true, json.Number("12345678901234567890")}},
		activejob.Decimal("0.1"),
		activejob.Range{Begin: int64(1), End: int64(5), ExcludeEnd: true},
		activejob.Serialized{Serializer: "MoneySerializer", Fields: map[string]any{"cents": int64(100), "currency": "EUR"}},
	}
	if len(a.Args) != len(want) {
		t.Fatalf("%d args, want %d: %#v", len(a.Args), len(want), a.Args)
	}
	for i := range want {
		got := a.Args[i]
		if wt, ok := want[i].(time.Time); ok {
			gt, ok := got.(time.Time)
			if !ok || !gt.Equal(wt) {
				t.Errorf("arg %d: %#v, want %v", i, got, wt)
			}
			if _, off := gt.Zone(); ok && off != func() int { _, o := wt.Zone(); return o }() {
				t.Errorf("arg %d: offset %d lost", i, off)
			}
			continue
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("arg %d: %#v, want %#v", i, got, want[i])
		}
	}
	if !reflect.DeepEqual(a.Keywords, map[string]any{"kw1": "x"}) {
		t.Errorf("keywords %#v", a.Keywords)
	}
	e := a.Envelope
	if e.JobClass != "MyAjJob" || e.JobID != "0f9ff7b7-a93e-4dc1-bb52-7cfa84fa7f60" || e.QueueName != "mailers" || e.Priority == nil || *e.Priority != 5 || e.Locale != "en" || e.Timezone != "" {
		t.Errorf("envelope %+v", e)
	}
	if g := activejob.GlobalID("gid://ferry/User/7"); g.Model() != "User" || g.ID() != "7" || g.App() != "ferry" {
		t.Errorf("GlobalID parts: %q %q %q", g.App(), g.Model(), g.ID())
	}
}

func TestActiveJobHandlerDiscardsNonEnvelopes(t *testing.T) {
	t.Parallel()
	h := middleware.ActiveJob(func(context.Context, *sidekiq.Job, middleware.AJArgs) error {
		t.Fatal("handler ran")
		return nil
	})
	for _, args := range []string{`[1,2]`, `[{"job_class":"X"}]`, `[{"job_class":"X","arguments":[{"_aj_serialized":"ActiveJob::Serializers::DateSerializer","value":"not a date"}]}]`} {
		err := h.Perform(context.Background(), jobWithArgs(t, "X", args))
		if !strings.Contains(err.Error(), "X: ") || !isDiscard(err) {
			t.Errorf("%s: %v, want a discard naming the class", args, err)
		}
	}
}

// wrapperOf is the payload class the release's ActiveJob adapter writes.
func wrapperOf(sk *testsuite.RubySidekiq) string {
	if sk.Major() >= 8 {
		return sidekiq.ActiveJobWrapperClass8
	}
	return sidekiq.ActiveJobWrapperClass
}

func isDiscard(err error) bool {
	_, ok := err.(*sidekiq.DiscardError)
	return ok
}

// Issue #5, check 2 (Ruby to Go): WelcomeEmailJob.perform_later(42, greeting: "hi") from
// Rails (ActiveJob 6.1 with the Sidekiq adapter of each release: Rails' own on 6.4.1,
// Sidekiq's own on 7.3.10 and 8.1.7) reaches a Go handler with 42 and the keywords;
// symbols, times, dates, durations, modules and GlobalIDs arrive typed. The payload class
// is the release's wrapper (JobWrapper up to 7.3, Sidekiq::ActiveJob::Wrapper on 8.x).
func TestRailsPerformLaterReachesGo(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRailsPerformLaterReachesGo)
}

func testRailsPerformLaterReachesGo(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	sk.Ruby(t, db.URL, `
require "active_support/all"
GlobalID.app = "ferry"
class User
  include GlobalID::Identification
  attr_reader :id
  def initialize(id) @id = id end
  def self.find(id) new(id) end
end
class WelcomeEmailJob < ActiveJob::Base
  queue_as :mailers
  def perform(*); end
end
class TypedJob < ActiveJob::Base
  def perform(*); end
end
WelcomeEmailJob.perform_later(42, greeting: "hi")
TypedJob.perform_later(:paid, Time.utc(2024, 1, 2, 3, 4, 5, 250000), Date.new(2024, 2, 29), User.new(7), 2.days + 3.hours, String, {a: 1, "b" => :x})
`, testsuite.WithActiveJob())

	got := make(chan middleware.AJArgs, 2)
	classes := make(chan string, 2)
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 1, Queues: []string{"mailers", "default"}})
	for _, class := range []string{"WelcomeEmailJob", "TypedJob"} {
		srv.Handle(class, middleware.ActiveJob(func(_ context.Context, job *sidekiq.Job, a middleware.AJArgs) error {
			if want := wrapperOf(sk); job.Class != want {
				t.Errorf("payload class %q, want %q", job.Class, want)
			}
			classes <- job.HandlerName()
			got <- a
			return nil
		}))
	}
	startServer(t, srv)
	byClass := map[string]middleware.AJArgs{}
	for range 2 {
		c := receive(t, "an ActiveJob run", classes)
		byClass[c] = receive(t, "its args", got)
	}
	w := byClass["WelcomeEmailJob"]
	if !reflect.DeepEqual(w.Args, []any{int64(42)}) || !reflect.DeepEqual(w.Keywords, map[string]any{"greeting": "hi"}) {
		t.Fatalf("WelcomeEmailJob got %#v %#v", w.Args, w.Keywords)
	}
	if w.Envelope.QueueName != "mailers" || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-`).MatchString(w.Envelope.JobID) {
		t.Fatalf("envelope %+v", w.Envelope)
	}
	ty := byClass["TypedJob"]
	want := []any{
		activejob.Symbol("paid"), time.Date(2024, 1, 2, 3, 4, 5, 250000000, time.UTC),
		activejob.Date{Year: 2024, Month: time.February, Day: 29}, activejob.GlobalID("gid://ferry/User/7"),
		activejob.Duration{Seconds: 183600, Parts: []activejob.DurationPart{{Unit: "days", Amount: 2}, {Unit: "hours", Amount: 3}}},
		activejob.Module("String"), map[string]any{"a": int64(1), "b": activejob.Symbol("x")},
	}
	if len(ty.Args) != len(want) {
		t.Fatalf("TypedJob got %#v", ty.Args)
	}
	for i := range want {
		if wt, ok := want[i].(time.Time); ok {
			if gt, ok := ty.Args[i].(time.Time); !ok || !gt.Equal(wt) {
				t.Errorf("arg %d: %#v, want %v", i, ty.Args[i], wt)
			}
		} else if !reflect.DeepEqual(ty.Args[i], want[i]) {
			t.Errorf("arg %d: %#v, want %#v", i, ty.Args[i], want[i])
		}
	}
}

// Issue #5, check 2 (Go to Ruby): a job Go enqueues as ActiveJob is run by Rails (each
// release's sidekiq binary with its ActiveJob adapter and the ActiveJob class), which
// receives Ruby values of the right types, keywords as keywords, and the record behind the
// GlobalID. PushActiveJob's wrapper class (JobWrapper) runs on every release; on 7.3 and
// 8.x a payload naming Sidekiq::ActiveJob::Wrapper (8.x's own) runs as well.
func TestGoEnqueuedActiveJobRunsInRails(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testGoEnqueuedActiveJobRunsInRails)
}

func testGoEnqueuedActiveJobRunsInRails(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	client := sidekiq.NewClient(db.Client, nil)
	at := time.Date(2024, 1, 2, 3, 4, 5, 250000000, time.UTC)
	args := []any{
		42, 2.5, activejob.Symbol("paid"), at, activejob.Date{Year: 2024, Month: 2, Day: 29},
		activejob.GlobalID("gid://ferry/User/7"), activejob.Duration{Seconds: 183600, Parts: []activejob.DurationPart{{Unit: "days", Amount: 2}, {Unit: "hours", Amount: 3}}},
		activejob.Module("String"), map[string]any{"total": "19.99"}, activejob.SymbolHash{"vip": true},
		activejob.Keywords{"greeting": "hi"},
	}
	jid, err := middleware.PushActiveJob(ctx, client, "ReceiptJob", "billing", args)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := testutil.Enqueued(ctx, db.Client, "", "billing")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("enqueued %v %v", jobs, err)
	}
	if j := jobs[0]; j.JID != jid || j.Class != sidekiq.ActiveJobWrapperClass || j.Wrapped != "ReceiptJob" || j.HandlerName() != "ReceiptJob" {
		t.Fatalf("envelope: %s", j.Raw())
	}
	pushed := map[string]string{jid: sidekiq.ActiveJobWrapperClass}
	if sk.Major() >= 7 {
		job, err := middleware.NewActiveJob("ReceiptJob", "billing", args)
		if err != nil {
			t.Fatal(err)
		}
		job.Class = sidekiq.ActiveJobWrapperClass8
		jid8, err := client.PushJob(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		pushed[jid8] = job.Class
	}

	p := sk.StartSidekiq(t, db.URL, sk.LoadActiveJob()+`
require "active_support/all"
GlobalID.app = "ferry"
class User
  include GlobalID::Identification
  attr_reader :id
  def initialize(id) @id = id.to_i end
  def self.find(id) new(id) end
end
def describe(a)
  case a
  when ActiveSupport::Duration then ["Duration", a.to_i, a.parts.to_a.map { |k, v| [k.to_s, v] }]
  when Time then ["Time", a.utc.iso8601(6)]
  when Date then ["Date", a.iso8601]
  when Hash then ["Hash", a.map { |k, v| [k.class.name, k.to_s, describe(v)] }]
  when Module then ["Module", a.name]
  when User then ["User", a.id]
  else [a.class.name, a]
  end
end
class ReceiptJob < ActiveJob::Base
  def perform(*args, **kw)
    Sidekiq.redis { |r| r.rpush("receipts", JSON.dump("args" => args.map { |a| describe(a) }, "kw" => describe(kw), "job_id" => job_id, "queue" => queue_name, "provider_job_id" => provider_job_id)) }
  end
end
`, "-q", "billing", "-c", "1")

	var got []string
	waitFor(t, "Rails to run ReceiptJob", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("sidekiq exited:\n%s", p.Output())
		default:
		}
		got, _ = db.Client.LRange(ctx, "receipts", 0, -1).Result()
		return len(got) >= len(pushed)
	})
	waitFor(t, "the queue to drain", func() bool { return llen(t, db.Client, "queue:billing") == 0 })
	if zcard(t, db.Client, "retry") != 0 || zcard(t, db.Client, "dead") != 0 {
		t.Fatal("Rails failed a job")
	}
	if got = db.Client.LRange(ctx, "receipts", 0, -1).Val(); len(got) != len(pushed) {
		t.Fatalf("Rails ran %d jobs, want %d", len(got), len(pushed))
	}
	for _, raw := range got {
		var rec struct {
			Args          [][]any `json:"args"`
			KW            []any   `json:"kw"`
			JobID         string  `json:"job_id"`
			Queue         string  `json:"queue"`
			ProviderJobID string  `json:"provider_job_id"`
		}
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		class, ok := pushed[rec.ProviderJobID]
		if !ok {
			t.Errorf("Rails ran provider_job_id %q, not one of the jids pushed %v", rec.ProviderJobID, pushed)
			continue
		}
		delete(pushed, rec.ProviderJobID)
		wantArgs := `[["Integer",42],["Float",2.5],["Symbol","paid"],["Time","2024-01-02T03:04:05.250000Z"],["Date","2024-02-29"],["User",7],["Duration",183600,[["days",2],["hours",3]]],["Module","String"],["Hash",[["String","total",["String","19.99"]]]],["Hash",[["Symbol","vip",["TrueClass",true]]]]]`
		if b, _ := json.Marshal(rec.Args); string(b) != wantArgs {
			t.Errorf("%s: Rails received\n%s\nwant\n%s", class, b, wantArgs)
		}
		if b, _ := json.Marshal(rec.KW); string(b) != `["Hash",[["Symbol","greeting",["String","hi"]]]]` {
			t.Errorf("%s: keywords arrived as %s", class, b)
		}
		if rec.Queue != "billing" || len(rec.JobID) != 36 {
			t.Errorf("%s: job_id %q queue %q", class, rec.JobID, rec.Queue)
		}
	}
}

// rubyAJShapes enqueues ShapeJob through the release's adapter and prints, for that payload
// (queue rb_shape) and the one Go pushed (queue go_shape), every top-level key and every
// ActiveJob envelope key with the Ruby class of its value; and which of the two wrapper
// class names resolve to a Sidekiq job class in this release.
const rubyAJShapes = `
class ShapeJob < ActiveJob::Base
  def perform(*); end
end
ShapeJob.set(queue: "rb_shape").perform_later(1, "x")
shape = ->(h) { h.keys.sort.map { |k| [k, h[k].class.name] } }
read = ->(q) { j = JSON.parse(Sidekiq::Queue.new(q).first.value); {"top" => shape.(j), "envelope" => shape.(j["args"][0]), "class" => j["class"], "wrapped" => j["wrapped"]} }
resolves = ["ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "Sidekiq::ActiveJob::Wrapper"].to_h do |n|
  k = Object.const_get(n) rescue nil
  [n, !k.nil? && k.include?(Sidekiq::Job) && k.instance_method(:perform).arity == 1]
end
puts JSON.generate({"ruby" => read.("rb_shape"), "go" => read.("go_shape"), "resolves" => resolves})
`

// Issue #16, item 5: the ActiveJob payload Go builds (NewActiveJob) has the keys, and value
// types, of the payload each release's own adapter writes, top level and envelope alike
// (8.x writes its timestamps as Integer milliseconds, Go as float seconds, which 8.x
// reads); its wrapper class resolves to a Sidekiq job class on every release, while 8.x's
// Sidekiq::ActiveJob::Wrapper exists only from 7.3.
func TestGoActiveJobPayloadShapeMatchesRelease(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, func(t *testing.T, sk *testsuite.RubySidekiq) {
		db := testsuite.RealRedis(t)
		job, err := middleware.NewActiveJob("ShapeJob", "go_shape", []any{1, "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sidekiq.NewClient(db.Client, nil).PushJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		out := sk.Ruby(t, db.URL, rubyAJShapes, testsuite.WithActiveJob())
		type payload struct {
			Top      [][2]string `json:"top"`
			Envelope [][2]string `json:"envelope"`
			Class    string      `json:"class"`
			Wrapped  string      `json:"wrapped"`
		}
		var res struct {
			Ruby, Go payload
			Resolves map[string]bool
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(res.Go.Top) < 7 || len(res.Go.Envelope) < 10 {
			t.Fatalf("Ruby read too little of Go's payload: %v", res.Go)
		}
		if res.Ruby.Class != wrapperOf(sk) || res.Ruby.Wrapped != "ShapeJob" || res.Go.Wrapped != "ShapeJob" {
			t.Errorf("Ruby's payload class %q wrapped %q, Go's wrapped %q; want %q, ShapeJob", res.Ruby.Class, res.Ruby.Wrapped, res.Go.Wrapped, wrapperOf(sk))
		}
		if sk.Millis() {
			for i, kv := range res.Ruby.Top {
				if (kv[0] == "created_at" || kv[0] == "enqueued_at") && kv[1] == "Integer" {
					res.Ruby.Top[i][1] = "Float"
				}
			}
		}
		if !reflect.DeepEqual(res.Go.Top, res.Ruby.Top) {
			t.Errorf("top-level keys and types:\n Go   %v\n Ruby %v", res.Go.Top, res.Ruby.Top)
		}
		if !reflect.DeepEqual(res.Go.Envelope, res.Ruby.Envelope) {
			t.Errorf("envelope keys and types:\n Go   %v\n Ruby %v", res.Go.Envelope, res.Ruby.Envelope)
		}
		want := map[string]bool{sidekiq.ActiveJobWrapperClass: true, sidekiq.ActiveJobWrapperClass8: sk.Major() >= 7}
		if !reflect.DeepEqual(res.Resolves, want) {
			t.Errorf("wrapper classes resolving to a Sidekiq job: %v, want %v", res.Resolves, want)
		}
	})
}
