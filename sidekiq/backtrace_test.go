package sidekiq_test

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/sidekiq"
)

var sampleBacktrace = []string{
	"app/jobs/hard_job.rb:7:in `perform'",
	"/usr/lib/ruby/vendor_ruby/sidekiq/processor.rb:196:in `execute_job'",
	"unicode ü <>&",
}

// rubyBacktrace compresses lines as Sidekiq's compress_backtrace does: JSON, zlib, base64;
// mime adds Base64.encode64's newline every 60 characters and at the end (Sidekiq ≤ 7.2.0).
func rubyBacktrace(t *testing.T, lines []string, mime bool) string {
	t.Helper()
	data, err := json.Marshal(lines)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	s := base64.StdEncoding.EncodeToString(b.Bytes())
	if !mime {
		return s
	}
	var m strings.Builder
	for len(s) > 60 {
		m.WriteString(s[:60] + "\n")
		s = s[60:]
	}
	m.WriteString(s + "\n")
	return m.String()
}

// TestErrorBacktraceShapes reads the MIME base64 of 6.x/early 7.x, the strict base64 of
// 7.2.1+, and the plain array of ≤ 6.0.0; garbage is an error, absence is nil.
func TestErrorBacktraceShapes(t *testing.T) {
	t.Parallel()
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	plain, _ := json.Marshal(sampleBacktrace)
	tests := []struct {
		name, value string
		want        []string
		wantErr     string
	}{
		{"mime base64", quote(rubyBacktrace(t, sampleBacktrace, true)), sampleBacktrace, ""},
		{"strict base64", quote(rubyBacktrace(t, sampleBacktrace, false)), sampleBacktrace, ""},
		{"plain array", string(plain), sampleBacktrace, ""},
		{"not base64", `"%%%"`, nil, "base64"},
		{"not zlib", quote(base64.StdEncoding.EncodeToString([]byte("hello"))), nil, "zlib"},
		{"not a string", `42`, nil, "not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := parsedJob(t, `{"class":"X","args":[],"error_backtrace":`+tc.value+`}`)
			got, err := j.ErrorBacktrace()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ErrorBacktrace = %q, %v", got, err)
			}
		})
	}
	if got, err := parsedJob(t, `{"class":"X","args":[]}`).ErrorBacktrace(); got != nil || err != nil {
		t.Fatalf("absent backtrace = %q, %v", got, err)
	}
}

// TestSetErrorBacktraceWritesStrictZlibBase64: what Ferry writes is strict base64 (no line
// breaks, readable by 7.2.1–7.2.2) of a zlib stream ("eJ"), and reads back.
func TestSetErrorBacktraceWritesStrictZlibBase64(t *testing.T) {
	t.Parallel()
	j := &sidekiq.Job{Class: "X"}
	if err := j.SetErrorBacktrace(sampleBacktrace); err != nil {
		t.Fatal(err)
	}
	var enc string
	if err := json.Unmarshal(j.Extra["error_backtrace"], &enc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "eJ") || strings.ContainsAny(enc, "\n\r") {
		t.Fatalf("error_backtrace = %q", enc)
	}
	back := parsedJob(t, string(j.AppendJSON(nil, sidekiq.TimeSeconds)))
	if got, err := back.ErrorBacktrace(); err != nil || !reflect.DeepEqual(got, sampleBacktrace) {
		t.Fatalf("read back %q, %v", got, err)
	}
	if err := j.SetErrorBacktrace(nil); err != nil || j.Extra["error_backtrace"] != nil {
		t.Fatalf("SetErrorBacktrace(nil) = %v, left %s", err, j.Extra["error_backtrace"])
	}
}

// TestCurrentAttributesErrors: a cattr that is neither an object nor pairs names its key.
func TestCurrentAttributesErrors(t *testing.T) {
	t.Parallel()
	j := parsedJob(t, `{"class":"X","args":[],"cattr":{"a":1},"cattr_1":"nope"}`)
	attrs, err := j.CurrentAttributes()
	if err == nil || !strings.Contains(err.Error(), "cattr_1") || len(attrs) != 1 {
		t.Fatalf("CurrentAttributes = %v, %v", attrs, err)
	}
	if attrs, err := parsedJob(t, `{"class":"X","args":[]}`).CurrentAttributes(); attrs != nil || err != nil {
		t.Fatalf("no cattr: %v, %v", attrs, err)
	}
}

// parsedJob parses a payload the test knows is valid.
func parsedJob(t *testing.T, payload string) *sidekiq.Job {
	t.Helper()
	j, err := sidekiq.ParseJob([]byte(payload))
	if err != nil {
		t.Fatalf("ParseJob(%s): %v", payload, err)
	}
	return j
}
