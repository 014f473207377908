package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// Payload fixtures for the Sidekiq versions that cannot run here (7.x, 8.x) and for
// third-party producers, built from the wire-format reference (reference/wire-format.md
// §1, §2.1–§2.5, §5.1).
// The backtrace strings were produced by Ruby's Zlib::Deflate + pack("m0") (strict, 7.2.1+)
// and Base64.encode64 (MIME, ≤ 7.2.0).

func utc(h, m, s, ns int) time.Time { return time.Date(2026, 11, 22, h, m, s, ns, time.UTC) }

var (
	// 1795352598.824373, the created_at observed on Debian's 6.4.1 (wire-format.md §2.1).
	tCreated = utc(13, 3, 18, 824373000)
	// 1795352598.8245742, its enqueued_at.
	tEnqueued = utc(13, 3, 18, 824574200)
)

func intp(n int) *int { return &n }

// backtrace8 is what sidekiq8_retry_strict_backtrace.json's error_backtrace inflates to.
var backtrace8 = []string{
	"app/jobs/hard_job.rb:12:in `perform'",
	"/usr/lib/ruby/vendor_ruby/sidekiq/processor.rb:196:in `execute_job'",
	"lib/ünïcode <&> path.rb:3:in `block in call'",
}

// backtrace6 is what sidekiq6_retry_mime_backtrace.json's error_backtrace inflates to.
var backtrace6 = func() []string {
	var out []string
	for i := 1; i <= 8; i++ {
		out = append(out, fmt.Sprintf("/srv/app/lib/some/long/path/to/a/file_number_%d.rb:%d:in `method_%d'", i, i*10, i))
	}
	return out
}()

type fixture struct {
	file                 string
	class, handler, jid  string
	queue, wrapped       string
	retry                string // RetryPolicy.String()
	retryMax             int    // RetryPolicy.Max(25)
	retryEnabled         bool
	retryCount           *int
	created, enqueued    time.Time
	failed, retried      time.Time
	errorClass, errorMsg string
	retryQueue           string
	args                 string // exact "args" bytes
	backtrace            []string
	cattr                []map[string]any  // numbers as json.Number
	extra                map[string]string // Extra key -> its exact raw bytes
	dead                 bool              // Dead()
	check                func(t *testing.T, j *sidekiq.Job)
	skipRubyCompare      bool     // Ferry drops "at" on purpose, so Ruby would see a difference
	droppedKeys          []string // keys Ferry deliberately does not write back
}

var fixtures = []fixture{
	{
		file: "sidekiq6_perform_async.json", class: "HardJob", handler: "HardJob",
		jid: "170b73febe2184d0ec04397f", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued,
		args: `[1,"two",3.5,null,true,{"k":"v"},[1,2]]`, dead: true,
		check: func(t *testing.T, j *sidekiq.Job) {
			args, err := j.ArgsSlice()
			if err != nil {
				t.Fatal(err)
			}
			want := []any{json.Number("1"), "two", json.Number("3.5"), nil, true, map[string]any{"k": "v"}, []any{json.Number("1"), json.Number("2")}}
			if !sameTree(fromDecoded(args), fromDecoded(want)) {
				t.Errorf("args = %#v", args)
			}
		},
	},
	{
		file: "sidekiq6_retry_mime_backtrace.json", class: "HardJob", handler: "HardJob",
		jid: "2d7c6f0e1a9b8c7d6e5f4a3b", queue: "default",
		retry: "5", retryMax: 5, retryEnabled: true, retryCount: intp(1),
		created: tCreated, enqueued: utc(13, 3, 30, 500000000),
		failed: utc(13, 3, 31, 250000000), retried: utc(13, 4, 10, 125000000),
		errorClass: "NoMethodError", errorMsg: "undefined method `foo' for nil:NilClass\n\n    nil.foo\n       ^^^^",
		args: `["x"]`, backtrace: backtrace6, extra: map[string]string{"backtrace": "true"}, dead: true,
	},
	{
		// raise Timeout::Error, "" gives "error_message":"" (job_retry.rb#exception_message):
		// the key must survive a re-encode even though the message is empty.
		file: "sidekiq6_retry_empty_message.json", class: "HardJob", handler: "HardJob",
		jid: "b7c8d9e0f1a2b3c4d5e6f7a8", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true, retryCount: intp(0),
		created: tCreated, enqueued: utc(13, 3, 30, 500000000), failed: utc(13, 3, 31, 250000000),
		errorClass: "Timeout::Error", errorMsg: "", args: `[2]`, dead: true,
	},
	{
		file: "sidekiq7_float_seconds.json", class: "Billing::ChargeJob", handler: "Billing::ChargeJob",
		jid: "5f1e2d3c4b5a69788796a5b4", queue: "critical", retryQueue: "low",
		retry: "3", retryMax: 3, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued,
		args:  `[{"invoice_id":9007199254740993,"amount":12.5,"note":"<b>&amp;</b>"}]`,
		extra: map[string]string{"tags": `["billing","βeta"]`, "backtrace": "10"}, dead: true,
		check: func(t *testing.T, j *sidekiq.Job) {
			var in struct {
				InvoiceID int64   `json:"invoice_id"`
				Amount    float64 `json:"amount"`
				Note      string  `json:"note"`
			}
			if err := j.DecodeArgs(&in); err != nil {
				t.Fatal(err)
			}
			if in.InvoiceID != 9007199254740993 || in.Amount != 12.5 || in.Note != "<b>&amp;</b>" {
				t.Errorf("DecodeArgs = %+v", in)
			}
			var tags []string
			if ok, err := j.Get("tags", &tags); !ok || err != nil || !slices.Equal(tags, []string{"billing", "βeta"}) {
				t.Errorf("Get(tags) = %v, %v, %v", tags, ok, err)
			}
		},
	},
	{
		// 7.1.3 wrote "retry_for":0 into every job; it means nothing for the retry policy.
		file: "sidekiq713_retry_for_zero.json", class: "HardJob", handler: "HardJob",
		jid: "8e7d6c5b4a39281706f5e4d3", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued, args: `[]`,
		extra: map[string]string{"retry_for": "0"}, dead: true,
	},
	{
		file: "sidekiq8_millis.json", class: "HardJob", handler: "HardJob",
		jid: "0a1b2c3d4e5f60718293a4b5", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: time.UnixMilli(1795352598824), enqueued: time.UnixMilli(1795352598825),
		args: `[1,"two"]`, dead: true,
	},
	{
		file: "sidekiq8_retry_strict_backtrace.json", class: "HardJob", handler: "HardJob",
		jid: "c1d2e3f4a5b6c7d8e9f0a1b2", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true, retryCount: intp(2),
		created: time.UnixMilli(1795352598824), enqueued: time.UnixMilli(1795352661000),
		failed: time.UnixMilli(1795352611250), retried: time.UnixMilli(1795352661125),
		errorClass: "RuntimeError", errorMsg: "boom <&>", args: `["x"]`, backtrace: backtrace8,
		extra: map[string]string{"backtrace": "true", "retry_for": "172800"}, dead: true,
	},
	{
		file: "sidekiq808_discarded.json", class: "HardJob", handler: "HardJob",
		jid: "d3adb33fd3adb33fd3adb33f", queue: "default",
		retry: "2", retryMax: 2, retryEnabled: true, retryCount: intp(0),
		created: time.UnixMilli(1795352598824), enqueued: time.UnixMilli(1795352598825),
		failed: time.UnixMilli(1795352600000), errorClass: "ArgumentError", errorMsg: "gone",
		args: `[7]`, extra: map[string]string{"dead": "false", "discarded_at": "1795352700123"}, dead: false,
	},
	{
		file: "sidekiq8_activejob_wrapper.json", class: sidekiq.ActiveJobWrapperClass8, handler: "WelcomeMailerJob",
		wrapped: "WelcomeMailerJob", jid: "4e5f6a7b8c9d0e1f2a3b4c5d", queue: "mailers",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: time.UnixMilli(1795352598824), enqueued: time.UnixMilli(1795352598825),
		args: `[{"job_class":"WelcomeMailerJob","job_id":"0f9ff7b7-a93e-4dc1-bb52-7cfa84fa7f60","provider_job_id":null,"queue_name":"mailers","priority":null,"arguments":[42,{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"welcome"},{"locale":"de","_aj_ruby2_keywords":["locale"]}],"executions":0,"exception_executions":{},"locale":"en","timezone":"UTC","enqueued_at":"2026-11-22T13:03:18.824373000Z","scheduled_at":null}]`,
		dead: true,
		check: func(t *testing.T, j *sidekiq.Job) {
			if !j.IsActiveJob() {
				t.Error("IsActiveJob = false for Sidekiq 8's wrapper")
			}
		},
	},
	{
		// No "wrapped": the handler comes from the envelope's job_class.
		file: "sidekiq8_activejob_no_wrapped.json", class: sidekiq.ActiveJobWrapperClass8, handler: "ReportJob",
		jid: "6c7d8e9f0a1b2c3d4e5f6a7b", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: time.UnixMilli(1795352598824), enqueued: time.UnixMilli(1795352598825),
		args: `[{"job_class":"ReportJob","job_id":"5a6b7c8d-0000-4000-8000-000000000001","provider_job_id":null,"queue_name":"default","priority":5,"arguments":[{"from":"2026-11-01","_aj_symbol_keys":["from"]}],"executions":1,"exception_executions":{"[Timeout::Error]":1},"locale":"en","timezone":null,"enqueued_at":"2026-11-22T13:03:18.824373000Z","scheduled_at":"2026-11-22T14:03:18.000000000Z"}]`,
		dead: true,
	},
	{
		file: "sidekiq733_activejob_jobwrapper.json", class: sidekiq.ActiveJobWrapperClass, handler: "SyncJob",
		wrapped: "SyncJob", jid: "7d8e9f0a1b2c3d4e5f6a7b8c", queue: "default",
		retry: "5", retryMax: 5, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued,
		args: `[{"job_class":"SyncJob","job_id":"9b1f0c2e-1111-4222-8333-444455556666","provider_job_id":null,"queue_name":"default","priority":null,"arguments":[1],"executions":0,"exception_executions":{},"locale":"en","timezone":"UTC","enqueued_at":"2026-11-22T13:03:18.824373000Z","scheduled_at":null}]`,
		dead: true,
	},
	{
		file: "sidekiq7_cattr_object.json", class: "HardJob", handler: "HardJob",
		jid: "8f9a0b1c2d3e4f5a6b7c8d9e", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued, args: `[]`,
		cattr: []map[string]any{
			{"user_id": json.Number("123"), "tenant": "acme"},
			{"request_id": "req-1", "big": json.Number("9007199254740993")},
		},
		extra: map[string]string{
			"cattr":   `{"user_id":123,"tenant":"acme"}`,
			"cattr_1": `{"request_id":"req-1","big":9007199254740993}`,
		},
		dead: true,
	},
	{
		file: "sidekiq8_cattr_pairs.json", class: "HardJob", handler: "HardJob",
		jid: "9a0b1c2d3e4f5a6b7c8d9e0f", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: time.UnixMilli(1795352598824), enqueued: time.UnixMilli(1795352598825), args: `[]`,
		cattr: []map[string]any{
			{"user_id": json.Number("123"), "tenant": "acme"},
			{"request_id": "req-1"},
		},
		extra: map[string]string{
			"cattr":   `[[{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"user_id"},123],[{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"tenant"},"acme"]]`,
			"cattr_1": `[["request_id","req-1"]]`,
		},
		dead: true,
	},
	{
		// Sidekiq Pro's reliable scheduler has written enqueued_at as a numeric string.
		file: "pro_numeric_string_enqueued_at.json", class: "HardJob", handler: "HardJob",
		jid: "a0b1c2d3e4f5a6b7c8d9e0f1", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued, args: `["x"]`, dead: true,
	},
	{
		// Integer seconds (rootly SDK, taylorchu/work) and no "retry" key at all.
		file: "third_party_integer_seconds.json", class: "HardJob", handler: "HardJob",
		jid: "b1c2d3e4f5a6b7c8d9e0f1a2", queue: "default",
		retry: "absent", retryMax: 25, retryEnabled: true,
		created: time.Unix(1795352598, 0), enqueued: time.Unix(1795352600, 0), args: `[1]`, dead: true,
	},
	{
		file: "third_party_jid12.json", class: "HardJob", handler: "HardJob",
		jid: "5b0d7c2e9f1a", queue: "default",
		retry: "false", retryMax: 0, retryEnabled: false,
		created: tCreated, enqueued: tEnqueued, args: `[]`, dead: true,
	},
	{
		// A 7.x job retried by an 8.x process: float created_at/failed_at, ms enqueued_at/retried_at.
		file: "mixed_fleet_7_to_8.json", class: "HardJob", handler: "HardJob",
		jid: "c2d3e4f5a6b7c8d9e0f1a2b3", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true, retryCount: intp(3),
		created: tCreated, enqueued: time.UnixMilli(1795352700000),
		failed: utc(13, 3, 31, 250000000), retried: time.UnixMilli(1795352690500),
		errorClass: "RuntimeError", errorMsg: "again", args: `["m"]`, dead: true,
	},
	{
		file: "unknown_keys_retry_zero.json", class: "HardJob", handler: "HardJob",
		jid: "d3e4f5a6b7c8d9e0f1a2b3c4", queue: "default",
		retry: "0", retryMax: 0, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued, args: `[]`, dead: true,
		extra: map[string]string{
			"bid":           `"b-0fGJ9zQk2Tqg"`,
			"lock":          `"until_executed"`,
			"lock_digest":   `"uniquejobs:1f0e3dad99908345f7439f8ffabdffc4"`,
			"lock_args":     `[1,"a"]`,
			"traceparent":   `"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`,
			"unique_for":    `"600"`,
			"display_class": `"Nice <Name>"`,
			"x_nested":      `{"a" : [1, 2.50, "\u00e9\u2028"], "b":null}`,
		},
		check: func(t *testing.T, j *sidekiq.Job) {
			if n, ok := j.Retry.Count(); !ok || n != 0 {
				t.Errorf(`Retry.Count() = %d, %v; want 0, true ("retry":0 means straight to dead)`, n, ok)
			}
		},
	},
	{
		// A non-bool, non-integer "retry" means the default, and is written back as it was.
		file: "retry_other.json", class: "HardJob", handler: "HardJob",
		jid: "e4f5a6b7c8d9e0f1a2b3c4d5", queue: "default",
		retry: `"yes"`, retryMax: 25, retryEnabled: true,
		created: tCreated, args: `[]`, dead: true,
	},
	{
		// Sidekiq counts only an Integer (retry_attempts_from: msg_retry.is_a?(Integer)); 5.0
		// means the default, and must be written back as 5.0, not turned into 5 retries.
		file: "retry_float.json", class: "HardJob", handler: "HardJob",
		jid: "a6b7c8d9e0f1a2b3c4d5e6f7", queue: "default",
		retry: "5.0", retryMax: 25, retryEnabled: true,
		created: tCreated, enqueued: tEnqueued, args: `[]`, dead: true,
		check: func(t *testing.T, j *sidekiq.Job) {
			if n, ok := j.Retry.Count(); ok {
				t.Errorf("Retry.Count() = %d, true; 5.0 is not an Integer retry count", n)
			}
		},
	},
	{
		// A stale "at" is read but never written back (every Sidekiq strips it before storing).
		file: "stale_at.json", class: "HardJob", handler: "HardJob",
		jid: "f5a6b7c8d9e0f1a2b3c4d5e6", queue: "default",
		retry: "true", retryMax: 25, retryEnabled: true,
		created: utc(13, 3, 18, 825966000), args: `["later"]`, dead: true,
		skipRubyCompare: true, droppedKeys: []string{"at"},
	},
}

func loadFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(data, "\n")
}

// checkFixture asserts every decoded value of j against the fixture's expectations.
func checkFixture(t *testing.T, fx fixture, j *sidekiq.Job) {
	t.Helper()
	str := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	str("Class", j.Class, fx.class)
	str("HandlerName()", j.HandlerName(), fx.handler)
	str("JID", j.JID, fx.jid)
	str("Queue", j.Queue, fx.queue)
	str("Wrapped", j.Wrapped, fx.wrapped)
	str("RetryQueue", j.RetryQueue, fx.retryQueue)
	str("ErrorClass", j.ErrorClass, fx.errorClass)
	str("ErrorMessage", j.ErrorMessage, fx.errorMsg)
	str("Retry", j.Retry.String(), fx.retry)
	str("Args", string(j.Args), fx.args)
	if got := j.Retry.Max(sidekiq.DefaultMaxRetries); got != fx.retryMax {
		t.Errorf("Retry.Max(25) = %d, want %d", got, fx.retryMax)
	}
	if got := j.Retry.Enabled(); got != fx.retryEnabled {
		t.Errorf("Retry.Enabled() = %v, want %v", got, fx.retryEnabled)
	}
	if got := j.Retry.IsSet(); got != (fx.retry != "absent") {
		t.Errorf("Retry.IsSet() = %v", got)
	}
	switch {
	case (j.RetryCount == nil) != (fx.retryCount == nil):
		t.Errorf("RetryCount = %v, want %v", j.RetryCount, fx.retryCount)
	case j.RetryCount != nil && *j.RetryCount != *fx.retryCount:
		t.Errorf("RetryCount = %d, want %d", *j.RetryCount, *fx.retryCount)
	}
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", j.CreatedAt, fx.created},
		{"EnqueuedAt", j.EnqueuedAt, fx.enqueued},
		{"FailedAt", j.FailedAt, fx.failed},
		{"RetriedAt", j.RetriedAt, fx.retried},
	} {
		// Millisecond-aligned instants (integer ms and s, and floats like .25 that a double
		// holds exactly) must come out exact; others to the resolution of a double.
		exact := tc.want.Nanosecond()%int(time.Millisecond) == 0
		if tc.want.IsZero() != tc.got.IsZero() || !sameInstant(tc.got, tc.want) || exact && !tc.got.Equal(tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got.UTC(), tc.want.UTC())
		}
	}
	if got := j.BuryOnFailure(); got != fx.dead {
		t.Errorf("Dead() = %v, want %v", got, fx.dead)
	}
	bt, err := j.ErrorBacktrace()
	if err != nil {
		t.Errorf("ErrorBacktrace: %v", err)
	} else if !slices.Equal(bt, fx.backtrace) {
		t.Errorf("ErrorBacktrace() = %q, want %q", bt, fx.backtrace)
	}
	ca, err := j.CurrentAttributes()
	if err != nil {
		t.Errorf("CurrentAttributes: %v", err)
	}
	if len(ca) != len(fx.cattr) {
		t.Errorf("CurrentAttributes() has %d maps, want %d: %v", len(ca), len(fx.cattr), ca)
	} else {
		for i := range ca {
			if !sameTree(fromDecoded(ca[i]), fromDecoded(fx.cattr[i])) {
				t.Errorf("CurrentAttributes()[%d] = %v, want %v", i, ca[i], fx.cattr[i])
			}
		}
	}
	for k, want := range fx.extra {
		if got, ok := j.Extra[k]; !ok || string(got) != want {
			t.Errorf("Extra[%q] = %s (present %v), want %s byte for byte", k, got, ok, want)
		}
	}
	if fx.check != nil {
		fx.check(t, j)
	}
}

// TestSidekiqPayloadFixtures decodes each fixture, checks the values, re-encodes it in both
// time formats and checks that (a) every key keeps its exact bytes (unknown keys and
// unchanged timestamps are never rewritten), (b) parsing the re-encoding gives the same
// values again.
func TestSidekiqPayloadFixtures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, fx := range fixtures {
		covered[fx.file] = true
		t.Run(strings.TrimSuffix(fx.file, ".json"), func(t *testing.T) {
			t.Parallel()
			orig := loadFixture(t, fx.file)
			j, err := sidekiq.ParseJob(orig)
			if err != nil {
				t.Fatalf("ParseJob: %v", err)
			}
			checkFixture(t, fx, j)
			if !bytes.Equal(j.Raw(), orig) {
				t.Errorf("Raw() is not the parsed bytes")
			}
			for _, f := range []sidekiq.TimeFormat{sidekiq.TimeSeconds, sidekiq.TimeMillis} {
				re := reencode(t, j, f)
				requireSameBytes(t, "re-encoded ("+f.String()+")", orig, re, fx.droppedKeys...)
				if _, ok := topLevel(t, re)["at"]; ok {
					t.Errorf(`re-encoding (%s) kept "at": %s`, f, re)
				}
				j2, err := sidekiq.ParseJob(re)
				if err != nil {
					t.Fatalf("ParseJob(re-encoding %s): %v\n%s", f, err, re)
				}
				checkFixture(t, fx, j2)
			}
		})
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("fixture %s has no expectations in the table", f)
		}
	}
}

// TestFixturesReadByRuby has each release read each fixture and Ferry's re-encoding of it: its
// JSON.parse and Sidekiq::JobRecord must see the same values (for millisecond fixtures 6.x
// shows wrong dates, but the same wrong dates), and its own backtrace decoder must find the
// same lines Ferry finds.
func TestFixturesReadByRuby(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testFixturesReadByRuby)
}

func testFixturesReadByRuby(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	var pairs []roundTrip
	want := map[string][]string{}
	for _, fx := range fixtures {
		orig := loadFixture(t, fx.file)
		j, err := sidekiq.ParseJob(orig)
		if err != nil {
			t.Fatalf("%s: %v", fx.file, err)
		}
		if fx.backtrace != nil {
			want[fx.file] = fx.backtrace
			if err := db.Client.HSet(t.Context(), "ferry:backtraces", fx.file, orig).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if !fx.skipRubyCompare {
			pairs = append(pairs, roundTrip{id: fx.file, orig: orig, reen: reencode(t, j, sidekiq.TimeSeconds)})
		}
	}
	compareInRuby(t, sk, db, pairs)

	out := sk.Ruby(t, db.URL, `
bts = Sidekiq.redis { |c| c.hgetall("ferry:backtraces") }
puts JSON.generate(bts.transform_values { |raw| Sidekiq::JobRecord.new(raw).error_backtrace })
`)
	var got map[string][]string
	mustUnmarshal(t, lastLine(out), &got)
	if len(got) != len(want) || len(want) < 2 {
		t.Fatalf("Ruby decoded %d backtraces, want %d", len(got), len(want))
	}
	for file, lines := range want {
		if !slices.Equal(got[file], lines) {
			t.Errorf("%s: Ruby's JobRecord#error_backtrace = %q, Ferry's table says %q", file, got[file], lines)
		}
	}
}
