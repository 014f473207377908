package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// HardInputs is the inputs type of the HardWorker of the README. Priority is "newer":
// payloads enqueued before it existed lack it.
type HardInputs struct {
	Name     string `json:"name"`
	Count    int    `json:"count" default:"1"`
	Priority string `json:"priority" default:"normal"`
}

func (in HardInputs) Validate() error {
	if in.Count < 0 {
		return middleware.Invalid("count", "must not be negative, got %d", in.Count)
	}
	return nil
}

func jobWithArgs(t *testing.T, class, args string) *sidekiq.Job {
	t.Helper()
	j, err := sidekiq.ParseJob([]byte(`{"class":"` + class + `","jid":"0123456789abcdef01234567","queue":"default","args":` + args + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestDecodeInputsDefaultsAndUnknownKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args string
		want HardInputs
	}{
		{`[{"name":"bob","count":5,"priority":"high"}]`, HardInputs{"bob", 5, "high"}},
		{`[{"name":"old"}]`, HardInputs{"old", 1, "normal"}},                                           // missing keys: defaults
		{`[{"name":"new","count":2,"colour":"red","nested":{"x":1}}]`, HardInputs{"new", 2, "normal"}}, // unknown keys ignored
		{`[{"name":"z","count":0}]`, HardInputs{"z", 0, "normal"}},                                     // an explicit zero beats the default
		{`[{"name":null,"count":3}]`, HardInputs{"", 3, "normal"}},
	}
	for _, tc := range cases {
		got, err := middleware.DecodeInputs[HardInputs](jobWithArgs(t, "HardWorker", tc.args))
		if err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

type tagged struct {
	Wait    time.Duration  `json:"wait" default:"90s"`
	Ratio   float64        `json:"ratio" default:"0.5"`
	On      bool           `json:"on" default:"true"`
	IDs     []int64        `json:"ids" default:"[1,2]"`
	Limits  limits         `json:"limits"`
	Extra   map[string]any `json:"extra"`
	Counter uint16         `json:"counter" default:"7"`
}

type limits struct {
	Max int `json:"max" default:"10"`
	Min int `json:"min"`
}

type coded struct {
	Region string `json:"region"`
	Tries  int    `json:"tries"`
}

func (c *coded) Defaults() { c.Region, c.Tries = "eu", 3 }

func TestDecodeInputsDefaultKinds(t *testing.T) {
	t.Parallel()
	got, err := middleware.DecodeInputs[tagged](jobWithArgs(t, "T", `[{"limits":{"min":2},"extra":{"big":12345678901234567890}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Wait != 90*time.Second || got.Ratio != 0.5 || !got.On || len(got.IDs) != 2 || got.IDs[1] != 2 || got.Counter != 7 {
		t.Fatalf("defaults not applied: %+v", got)
	}
	if got.Limits.Max != 10 || got.Limits.Min != 2 {
		t.Fatalf("nested defaults: %+v", got.Limits)
	}
	if n, ok := got.Extra["big"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Fatalf("numbers in any fields must be exact json.Number, got %#v", got.Extra["big"])
	}

	c, err := middleware.DecodeInputs[coded](jobWithArgs(t, "C", `[{"tries":5}]`))
	if err != nil || c.Region != "eu" || c.Tries != 5 {
		t.Fatalf("Defaults method: %+v %v", c, err)
	}
	p, err := middleware.DecodeInputs[*coded](jobWithArgs(t, "C", `[{"region":"us"}]`))
	if err != nil || p == nil || p.Region != "us" || p.Tries != 3 {
		t.Fatalf("pointer inputs with Defaults: %+v %v", p, err)
	}
}

type badDefault struct {
	N int `json:"n" default:"many"`
}

func TestDecodeInputsErrorsNameClassFieldAndProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args  string
		field string
		want  []string
	}{
		{`["bob",5]`, "args", []string{"HardWorker: args:", "one JSON object", "2 positional", "[string, number]"}},
		{`[]`, "args", []string{"got 0 positional"}},
		{`[{"name":"a"},{"name":"b"}]`, "args", []string{"got 2 positional"}},
		{`[{"name":"bob","count":"five"}]`, "count", []string{`HardWorker: input "count":`, "want int", "got JSON string"}},
		{`[{"name":["x"]}]`, "name", []string{`input "name"`, "want string", "array"}},
		{`[{"name":"bob","count":-3}]`, "count", []string{`HardWorker: input "count": must not be negative, got -3`}},
	}
	for _, tc := range cases {
		_, err := middleware.DecodeInputs[HardInputs](jobWithArgs(t, "HardWorker", tc.args))
		var ie *middleware.InputError
		if !errors.As(err, &ie) || !errors.Is(err, middleware.ErrInvalidInputs) {
			t.Fatalf("%s: error %v is not an *InputError", tc.args, err)
		}
		if ie.Class != "HardWorker" || ie.Field != tc.field {
			t.Errorf("%s: class %q field %q, want HardWorker %q", tc.args, ie.Class, ie.Field, tc.field)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message %q lacks %q", tc.args, err, w)
			}
		}
	}
	if _, err := middleware.DecodeInputs[badDefault](jobWithArgs(t, "B", `[{}]`)); err == nil || !strings.Contains(err.Error(), "bad default") {
		t.Fatalf("an unparseable default tag must be reported, got %v", err)
	}
}

// The handler made by Inputs turns decode errors into Discard (dead set at once) and runs
// fn with the decoded inputs otherwise.
func TestInputsHandlerDiscardsBadPayloads(t *testing.T) {
	t.Parallel()
	var got HardInputs
	h := middleware.Inputs(func(_ context.Context, _ *sidekiq.Job, in HardInputs) error { got = in; return nil })
	if err := h.Perform(context.Background(), jobWithArgs(t, "HardWorker", `[{"name":"bob","count":5}]`)); err != nil {
		t.Fatal(err)
	}
	if got != (HardInputs{"bob", 5, "normal"}) {
		t.Fatalf("got %+v", got)
	}
	err := h.Perform(context.Background(), jobWithArgs(t, "HardWorker", `["bob",5]`))
	if !errors.Is(err, sidekiq.ErrDiscard) || !errors.Is(err, middleware.ErrInvalidInputs) {
		t.Fatalf("positional args: %v, want a Discard of an InputError", err)
	}
}

func TestEnqueueEncodesOneNamedHash(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	client := sidekiq.NewClient(rdb, nil)
	ctx := context.Background()
	jid, err := middleware.Enqueue(ctx, client, "HardWorker", HardInputs{Name: "<bob>", Count: 5, Priority: "high"}, sidekiq.Queue("critical"))
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := testutil.Enqueued(ctx, rdb, "", "critical")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("enqueued: %v %v", jobs, err)
	}
	j := jobs[0]
	if j.JID != jid || j.Class != "HardWorker" || string(j.Args) != `[{"name":"<bob>","count":5,"priority":"high"}]` {
		t.Fatalf("pushed %s %s %s", j.JID, j.Class, j.Args)
	}
	back, err := middleware.DecodeInputs[HardInputs](j)
	if err != nil || back != (HardInputs{"<bob>", 5, "high"}) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if _, err := middleware.Enqueue(ctx, client, "HardWorker", 42); err == nil {
		t.Fatal("inputs that are not an object must be refused")
	}
	if n := llen(t, rdb, "queue:default"); n != 0 {
		t.Fatalf("a refused push wrote %d jobs", n)
	}
}

// Issue #5, check 1: HardWorker.perform_async("name" => "bob", "count" => 5) from Ruby
// reaches a Go Inputs[HardInputs] handler as {Name: "bob", Count: 5}; an old payload
// without a newer input gets its default; positional args go to the dead set with a clear
// error, without retries.
func TestRubyNamedInputsReachGo(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	rdb := db.Client
	testsuite.Ruby(t, db.URL, `
class HardWorker; include Sidekiq::Worker; def perform(*); end; end
HardWorker.perform_async("name" => "bob", "count" => 5, "priority" => "high")
HardWorker.perform_async("name" => "amy")   # enqueued by code that predates count and priority
HardWorker.perform_async("carl", 7)         # positional: not named inputs
`)
	got := make(chan HardInputs, 4)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2, PollInterval: 50 * time.Millisecond})
	srv.Handle("HardWorker", middleware.Inputs(func(_ context.Context, _ *sidekiq.Job, in HardInputs) error {
		got <- in
		return nil
	}))
	startServer(t, srv)

	seen := map[string]HardInputs{}
	for range 2 {
		in := receive(t, "a HardWorker run", got)
		seen[in.Name] = in
	}
	if seen["bob"] != (HardInputs{"bob", 5, "high"}) {
		t.Errorf("bob arrived as %+v", seen["bob"])
	}
	if seen["amy"] != (HardInputs{"amy", 1, "normal"}) {
		t.Errorf("the old payload arrived as %+v, want the defaults", seen["amy"])
	}
	waitFor(t, "the positional job in the dead set", func() bool { return zcard(t, rdb, "dead") == 1 })
	dead, err := testutil.Scheduled(context.Background(), rdb, "", "dead")
	if err != nil {
		t.Fatal(err)
	}
	d := dead[0]
	if d.Class != "HardWorker" || d.ErrorClass != "Ferry::InvalidInputs" || d.RetryCount == nil || *d.RetryCount != 0 {
		t.Fatalf("dead entry: class %s error_class %s retry_count %v", d.Class, d.ErrorClass, d.RetryCount)
	}
	if !strings.Contains(d.ErrorMessage, "HardWorker: args: want one JSON object of named inputs, got 2 positional") {
		t.Fatalf("dead entry's message is not clear: %q", d.ErrorMessage)
	}
	if n := zcard(t, rdb, "retry"); n != 0 {
		t.Fatalf("%d jobs in the retry set; invalid inputs must never be retried", n)
	}
	select {
	case in := <-got:
		t.Fatalf("the positional job reached the handler as %+v", in)
	default:
	}
}
