package sidekiq_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
)

// created is the created_at of the payloads below: 1795352598.824373 s.
var created = time.Unix(1795352598, 824373000)

// TestParseJobShapes reads the payload shapes of wire-format.md §2 as Sidekiq 6, 7, 8 and
// third-party producers write them.
func TestParseJobShapes(t *testing.T) {
	t.Parallel()
	const base = `"class":"HardJob","args":[1,"two"],"jid":"170b73febe2184d0ec04397f","queue":"default"`
	cases := []struct {
		name  string
		extra string // appended to base, or the whole payload when it starts with "{"
		check func(t *testing.T, j *sidekiq.Job)
	}{
		{"float seconds (6/7)", `"created_at":1795352598.824373,"enqueued_at":1795352598.8245742`, func(t *testing.T, j *sidekiq.Job) {
			wantTime(t, "created_at", j.CreatedAt, created, time.Microsecond)
			wantTime(t, "enqueued_at", j.EnqueuedAt, time.Unix(1795352598, 824574200), time.Microsecond)
		}},
		{"integer ms (8)", `"created_at":1795352598824,"failed_at":1795352600000,"retried_at":1795352700500`, func(t *testing.T, j *sidekiq.Job) {
			wantTime(t, "created_at", j.CreatedAt, time.UnixMilli(1795352598824), 0)
			wantTime(t, "failed_at", j.FailedAt, time.Unix(1795352600, 0), 0)
			wantTime(t, "retried_at", j.RetriedAt, time.UnixMilli(1795352700500), 0)
		}},
		{"integer seconds (third party)", `"created_at":1795352598`, func(t *testing.T, j *sidekiq.Job) {
			wantTime(t, "created_at", j.CreatedAt, time.Unix(1795352598, 0), 0)
		}},
		{"exponent seconds", `"created_at":1.795352598824373e9`, func(t *testing.T, j *sidekiq.Job) {
			wantTime(t, "created_at", j.CreatedAt, created, time.Microsecond)
		}},
		{"numeric strings (Pro)", `"created_at":"1795352598.824373","enqueued_at":"1795352598824"`, func(t *testing.T, j *sidekiq.Job) {
			wantTime(t, "created_at", j.CreatedAt, created, time.Microsecond)
			wantTime(t, "enqueued_at", j.EnqueuedAt, time.UnixMilli(1795352598824), 0)
		}},
		{"timestamp of wrong type kept", `"created_at":true`, func(t *testing.T, j *sidekiq.Job) {
			if !j.CreatedAt.IsZero() || string(j.Extra["created_at"]) != "true" {
				t.Fatalf("created_at %v, Extra %s", j.CreatedAt, j.Extra["created_at"])
			}
		}},
		{"retry true", `"retry":true`, wantRetry("true", 25, true)},
		{"retry false", `"retry":false`, wantRetry("false", 0, false)},
		{"retry 3", `"retry":3`, wantRetry("3", 3, true)},
		{"retry 0 is truthy: straight to dead", `"retry":0`, wantRetry("0", 0, true)},
		{"retry absent", ``, wantRetry("absent", 25, true)},
		{"retry_count and errors", `"retry_count":2,"error_class":"RuntimeError","error_message":"boom"`, func(t *testing.T, j *sidekiq.Job) {
			if j.RetryCount == nil || *j.RetryCount != 2 || j.ErrorClass != "RuntimeError" || j.ErrorMessage != "boom" {
				t.Fatalf("retry_count %v, error %q %q", j.RetryCount, j.ErrorClass, j.ErrorMessage)
			}
		}},
		{"cattr object (6/7)", `"cattr":{"user_id":123},"cattr_1":{"locale":"fr"}`, wantCattr(`[map[user_id:123] map[locale:fr]]`)},
		{"cattr pairs (8)", `"cattr":[[{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"user_id"},123]]`, wantCattr(`[map[user_id:123]]`)},
		{"jid and queue null", `{"class":"HardJob","args":[],"jid":null,"queue":null}`, func(t *testing.T, j *sidekiq.Job) {
			if j.JID != "" || j.Queue != "" || string(j.Args) != "[]" {
				t.Fatalf("jid %q queue %q args %s", j.JID, j.Queue, j.Args)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			payload := "{" + base
			if tc.extra != "" {
				payload += "," + tc.extra
			}
			payload += "}"
			if strings.HasPrefix(tc.extra, "{") {
				payload = tc.extra
			}
			j, err := sidekiq.ParseJob([]byte(payload))
			if err != nil {
				t.Fatalf("ParseJob(%s): %v", payload, err)
			}
			if j.Class != "HardJob" || string(j.Raw()) != payload {
				t.Fatalf("class %q, raw %s", j.Class, j.Raw())
			}
			tc.check(t, j)
		})
	}
}

func wantTime(t *testing.T, field string, got, want time.Time, tolerance time.Duration) {
	t.Helper()
	if got.Sub(want).Abs() > tolerance {
		t.Fatalf("%s = %v, want %v (±%v)", field, got, want, tolerance)
	}
}

func wantRetry(s string, max int, enabled bool) func(*testing.T, *sidekiq.Job) {
	return func(t *testing.T, j *sidekiq.Job) {
		t.Helper()
		if j.Retry.String() != s || j.Retry.Max(sidekiq.DefaultMaxRetries) != max || j.Retry.Enabled() != enabled {
			t.Fatalf("retry %s max %d enabled %v, want %s %d %v", j.Retry, j.Retry.Max(sidekiq.DefaultMaxRetries), j.Retry.Enabled(), s, max, enabled)
		}
	}
}

func wantCattr(want string) func(*testing.T, *sidekiq.Job) {
	return func(t *testing.T, j *sidekiq.Job) {
		t.Helper()
		attrs, err := j.CurrentAttributes()
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(attrs); got != want {
			t.Fatalf("CurrentAttributes = %s, want %s", got, want)
		}
	}
}

// TestParseJobActiveJobWrappers: both wrapper names make an ActiveJob job handled under
// its "wrapped" class.
func TestParseJobActiveJobWrappers(t *testing.T) {
	t.Parallel()
	for _, wrapper := range []string{sidekiq.ActiveJobWrapperClass, sidekiq.ActiveJobWrapperClass8} {
		t.Run(wrapper, func(t *testing.T) {
			t.Parallel()
			j, err := sidekiq.ParseJobString(`{"class":"` + wrapper + `","wrapped":"SendMailJob","args":[{"job_class":"SendMailJob","arguments":[]}]}`)
			if err != nil {
				t.Fatal(err)
			}
			if !j.IsActiveJob() || j.Wrapped != "SendMailJob" || j.HandlerName() != "SendMailJob" {
				t.Fatalf("IsActiveJob %v, wrapped %q, handler %q", j.IsActiveJob(), j.Wrapped, j.HandlerName())
			}
		})
	}
	j, err := sidekiq.ParseJobString(`{"class":"PlainJob","wrapped":"Other","args":[]}`)
	if err != nil || j.IsActiveJob() || j.HandlerName() != "PlainJob" {
		t.Fatalf("plain job with wrapped: %v %v %q", err, j.IsActiveJob(), j.HandlerName())
	}
}

// TestAppendJSONKeepsUnknownKeysVerbatim: keys Ferry does not know, and unchanged
// timestamps, are written back byte for byte.
func TestAppendJSONKeepsUnknownKeysVerbatim(t *testing.T) {
	t.Parallel()
	verbatim := []string{
		`"bid":"cA9x2Zp0"`,
		`"lock_args":[1,{"a":null}]`,
		`"custom":{"nested":[1.50,"\u00e9<&>"],"big":12345678901234567890}`,
		`"unique_for":"600"`,
		`"created_at":1795352598.824373`,
		`"args":[1.0,12345678901234567890,"x"]`,
	}
	payload := `{"class":"W","jid":"170b73febe2184d0ec04397f",` + strings.Join(verbatim, ",") + `}`
	j, err := sidekiq.ParseJobString(payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []sidekiq.TimeFormat{sidekiq.TimeSeconds, sidekiq.TimeMillis} {
		out := string(j.AppendJSON(nil, f))
		for _, v := range verbatim {
			if !strings.Contains(out, v) {
				t.Errorf("%v: %s not kept in %s", f, v, out)
			}
		}
		back, err := sidekiq.ParseJobString(out)
		if err != nil || back.JID != j.JID || !back.CreatedAt.Equal(j.CreatedAt) {
			t.Fatalf("%v: re-parse %v, jid %s created %v", f, err, back.JID, back.CreatedAt)
		}
	}
}

// TestAppendJSONTimeFormats: a changed timestamp is written as float seconds with a
// fraction, or as integer milliseconds.
func TestAppendJSONTimeFormats(t *testing.T) {
	t.Parallel()
	j := &sidekiq.Job{Class: "W", JID: "j", Queue: "default", CreatedAt: time.Unix(1700000000, 0)}
	if out := string(j.AppendJSON(nil, sidekiq.TimeSeconds)); !strings.Contains(out, `"created_at":1700000000.0`) || !strings.Contains(out, `"args":[]`) {
		t.Fatalf("seconds: %s", out)
	}
	if out := string(j.AppendJSON(nil, sidekiq.TimeMillis)); !strings.Contains(out, `"created_at":1700000000000`) {
		t.Fatalf("millis: %s", out)
	}
}

// TestParseJobErrors: payloads that cannot run are *PayloadError naming the field.
func TestParseJobErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		payload string
		field   string
	}{
		{`not json`, ""},
		{`[1,2]`, ""},
		{`{"class":"W","args":[]`, ""},
		{`{"args":[]}`, "class"},
		{`{"class":"","args":[]}`, "class"},
		{`{"class":7,"args":[]}`, "class"},
		{`{"class":"W"}`, "args"},
		{`{"class":"W","args":null}`, "args"},
		{`{"class":"W","args":{"a":1}}`, "args"},
		{`{"class":"W","args":"x"}`, "args"},
		{`{"class":"W","args":[],"jid":12}`, "jid"},
		{`{"class":"W","args":[],"queue":["a"]}`, "queue"},
	}
	for _, tc := range cases {
		t.Run(tc.payload, func(t *testing.T) {
			t.Parallel()
			j, err := sidekiq.ParseJob([]byte(tc.payload))
			var pe *sidekiq.PayloadError
			if !errors.As(err, &pe) || !errors.Is(err, sidekiq.ErrInvalidPayload) || j != nil {
				t.Fatalf("ParseJob = %v, %v; want a *PayloadError", j, err)
			}
			if pe.Field != tc.field {
				t.Fatalf("field %q, want %q (%v)", pe.Field, tc.field, err)
			}
		})
	}
}
