package middleware_test

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

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
		int64(1), "s", middleware.Symbol("sym"),
		map[string]any{"a": int64(1), "b": int64(2)},
		time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 0, est),
		middleware.Date{Year: 2024, Month: time.February, Day: 29},
		time.Date(2024, 1, 2, 3, 4, 5, 0, plus2),
		middleware.Duration{Seconds: 183600, Parts: []middleware.DurationPart{{Unit: "days", Amount: 2}, {Unit: "hours", Amount: 3}}},
		"1.25", // Rails 6.1 writes BigDecimal as a plain string
		middleware.Module("String"),
		middleware.GlobalID("gid://ferry/User/7"),
		map[string]any{"k": []any{1.5, nil, true, json.Number("12345678901234567890")}},
		middleware.Decimal("0.1"),
		middleware.Range{Begin: int64(1), End: int64(5), ExcludeEnd: true},
		middleware.Serialized{Serializer: "MoneySerializer", Fields: map[string]any{"cents": int64(100), "currency": "EUR"}},
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
	if g := middleware.GlobalID("gid://ferry/User/7"); g.Model() != "User" || g.ID() != "7" || g.App() != "ferry" {
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

func isDiscard(err error) bool {
	_, ok := err.(*sidekiq.DiscardError)
	return ok
}

func TestEncodeAJArgumentsRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	in := []any{
		42, uint8(7), 3.0, "s", nil, true, middleware.Symbol("paid"), at,
		middleware.Date{Year: 2024, Month: 2, Day: 29}, middleware.GlobalID("gid://ferry/User/7"),
		middleware.Duration{Seconds: 90}, middleware.Module("String"),
		map[string]int{"total": 3}, middleware.SymbolHash{"a": []string{"x"}},
		middleware.Keywords{"greeting": "hi"},
	}
	raw, err := middleware.EncodeAJArguments(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{
		`[42,7,3.0,"s",null,true,{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"paid"}`,
		`{"_aj_serialized":"ActiveJob::Serializers::TimeSerializer","value":"2024-01-02T03:04:05.000006000Z"}`,
		`{"_aj_serialized":"ActiveJob::Serializers::DurationSerializer","value":90,"parts":[[{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"seconds"},90]]}`,
		`{"total":3,"_aj_symbol_keys":[]}`, `{"a":["x"],"_aj_symbol_keys":["a"]}`,
		`{"greeting":"hi","_aj_ruby2_keywords":["greeting"]}]`,
	} {
		if !strings.Contains(string(raw), frag) {
			t.Errorf("encoding lacks %s:\n%s", frag, raw)
		}
	}
	back, err := middleware.DecodeAJArguments(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back[0] != int64(42) || back[2] != 3.0 || back[6] != middleware.Symbol("paid") || !back[7].(time.Time).Equal(at) ||
		!reflect.DeepEqual(back[14], middleware.Keywords{"greeting": "hi"}) {
		t.Fatalf("round trip: %#v", back)
	}
	for _, bad := range []any{struct{}{}, map[int]int{1: 1}, map[string]any{"_aj_globalid": 1}} {
		if _, err := middleware.EncodeAJArguments([]any{bad}); err == nil {
			t.Errorf("%#v must be refused", bad)
		}
	}
}

// Issue #5, check 2 (Ruby to Go): WelcomeEmailJob.perform_later(42, greeting: "hi") from
// Rails (ActiveJob 6.1, Sidekiq adapter) reaches a Go handler with 42 and the keywords;
// symbols, times, dates, durations, modules and GlobalIDs arrive typed.
func TestRailsPerformLaterReachesGo(t *testing.T) {
	t.Parallel()
	testutil.RequireRuby(t)
	db := testutil.RealRedis(t)
	testutil.Ruby(t, db.URL, `
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
`, testutil.WithActiveJob())

	got := make(chan middleware.AJArgs, 2)
	classes := make(chan string, 2)
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 1, Queues: []string{"mailers", "default"}})
	for _, class := range []string{"WelcomeEmailJob", "TypedJob"} {
		srv.Handle(class, middleware.ActiveJob(func(_ context.Context, job *sidekiq.Job, a middleware.AJArgs) error {
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
		middleware.Symbol("paid"), time.Date(2024, 1, 2, 3, 4, 5, 250000000, time.UTC),
		middleware.Date{Year: 2024, Month: time.February, Day: 29}, middleware.GlobalID("gid://ferry/User/7"),
		middleware.Duration{Seconds: 183600, Parts: []middleware.DurationPart{{Unit: "days", Amount: 2}, {Unit: "hours", Amount: 3}}},
		middleware.Module("String"), map[string]any{"a": int64(1), "b": middleware.Symbol("x")},
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

// Issue #5, check 2 (Go to Ruby): a job Go enqueues as ActiveJob is run by Rails (the real
// sidekiq binary with the ActiveJob class), which receives Ruby values of the right types,
// keywords as keywords, and the record behind the GlobalID.
func TestGoEnqueuedActiveJobRunsInRails(t *testing.T) {
	t.Parallel()
	testutil.RequireRuby(t)
	db := testutil.RealRedis(t)
	ctx := context.Background()
	client := sidekiq.NewClient(db.Client, nil)
	at := time.Date(2024, 1, 2, 3, 4, 5, 250000000, time.UTC)
	jid, err := middleware.PushActiveJob(ctx, client, "ReceiptJob", "billing", []any{
		42, 2.5, middleware.Symbol("paid"), at, middleware.Date{Year: 2024, Month: 2, Day: 29},
		middleware.GlobalID("gid://ferry/User/7"), middleware.Duration{Seconds: 183600, Parts: []middleware.DurationPart{{Unit: "days", Amount: 2}, {Unit: "hours", Amount: 3}}},
		middleware.Module("String"), map[string]any{"total": "19.99"}, middleware.SymbolHash{"vip": true},
		middleware.Keywords{"greeting": "hi"},
	})
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

	p := testutil.StartSidekiq(t, db.URL, `
require "active_job"
require "active_job/queue_adapters/sidekiq_adapter"
require "active_support/all"
ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Logger.new(nil)
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
    Sidekiq.redis { |r| r.set("receipt", JSON.dump("args" => args.map { |a| describe(a) }, "kw" => describe(kw), "job_id" => job_id, "queue" => queue_name)) }
  end
end
`, "-q", "billing", "-c", "1")

	var got string
	waitFor(t, "Rails to run ReceiptJob", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("sidekiq exited:\n%s", p.Output())
		default:
		}
		got, _ = db.Client.Get(ctx, "receipt").Result()
		return got != ""
	})
	var rec struct {
		Args  [][]any `json:"args"`
		KW    []any   `json:"kw"`
		JobID string  `json:"job_id"`
		Queue string  `json:"queue"`
	}
	if err := json.Unmarshal([]byte(got), &rec); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	wantArgs := `[["Integer",42],["Float",2.5],["Symbol","paid"],["Time","2024-01-02T03:04:05.250000Z"],["Date","2024-02-29"],["User",7],["Duration",183600,[["days",2],["hours",3]]],["Module","String"],["Hash",[["String","total",["String","19.99"]]]],["Hash",[["Symbol","vip",["TrueClass",true]]]]]`
	if b, _ := json.Marshal(rec.Args); string(b) != wantArgs {
		t.Errorf("Rails received\n%s\nwant\n%s", b, wantArgs)
	}
	if b, _ := json.Marshal(rec.KW); string(b) != `["Hash",[["Symbol","greeting",["String","hi"]]]]` {
		t.Errorf("keywords arrived as %s", b)
	}
	if rec.Queue != "billing" || len(rec.JobID) != 36 {
		t.Errorf("job_id %q queue %q", rec.JobID, rec.Queue)
	}
	waitFor(t, "the queue to drain", func() bool { return llen(t, db.Client, "queue:billing") == 0 })
	if zcard(t, db.Client, "retry") != 0 || zcard(t, db.Client, "dead") != 0 {
		t.Fatal("Rails failed the job")
	}
}
