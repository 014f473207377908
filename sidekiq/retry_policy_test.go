package sidekiq_test

import (
	"strings"
	"testing"

	"github.com/ferryhq/ferry/sidekiq"
)

// TestRetryPolicy: each shape of "retry" gives the right Max, Enabled, Count and String,
// and is written back as it was read.
func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		policy    sidekiq.RetryPolicy
		isSet     bool
		enabled   bool
		max       int // with a handler default of 25
		count     int
		isCount   bool
		str, wire string // wire: the "retry" member written, "" for none
	}{
		{"absent", sidekiq.RetryPolicy{}, false, true, 25, 0, false, "absent", ""},
		{"true", sidekiq.RetryTrue(), true, true, 25, 0, false, "true", `"retry":true`},
		{"false", sidekiq.RetryFalse(), true, false, 0, 0, false, "false", `"retry":false`},
		{"N", sidekiq.RetryN(3), true, true, 3, 3, true, "3", `"retry":3`},
		{"zero goes straight to dead", sidekiq.RetryN(0), true, true, 0, 0, true, "0", `"retry":0`},
		{"negative is zero", sidekiq.RetryN(-4), true, true, 0, 0, true, "0", `"retry":0`},
		{"parsed float", parsedJob(t, `{"class":"X","args":[],"retry":5.0}`).Retry, true, true, 25, 0, false, "5.0", `"retry":5.0`},
		{"parsed string", parsedJob(t, `{"class":"X","args":[],"retry":"3"}`).Retry, true, true, 25, 0, false, `"3"`, `"retry":"3"`},
		{"parsed null", parsedJob(t, `{"class":"X","args":[],"retry":null}`).Retry, true, true, 25, 0, false, "null", `"retry":null`},
		{"parsed integer", parsedJob(t, `{"class":"X","args":[],"retry":12}`).Retry, true, true, 12, 12, true, "12", `"retry":12`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.policy
			n, isCount := p.Count()
			if p.IsSet() != tc.isSet || p.Enabled() != tc.enabled || p.Max(25) != tc.max || n != tc.count || isCount != tc.isCount || p.String() != tc.str {
				t.Fatalf("IsSet %v Enabled %v Max %d Count %d,%v String %q", p.IsSet(), p.Enabled(), p.Max(25), n, isCount, p.String())
			}
			out := string((&sidekiq.Job{Class: "X", Retry: p}).AppendJSON(nil, sidekiq.TimeSeconds))
			if tc.wire == "" && strings.Contains(out, `"retry"`) || tc.wire != "" && !strings.Contains(out, tc.wire) {
				t.Fatalf("written as %s, want %q", out, tc.wire)
			}
		})
	}
}
