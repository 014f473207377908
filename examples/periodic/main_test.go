package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestPeriodicExample runs the example until three reports have run, on the embedded
// Redis: each report came from a tick of the schedule, and the schedule is listed as a
// sidekiq-cron job, enabled, with a last enqueue time.
func TestPeriodicExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), "", 3, &out); err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	s := out.String()
	if n := strings.Count(s, "usage report (last 2 seconds)"); n < 3 {
		t.Fatalf("%d reports:\n%s", n, s)
	}
	if !strings.Contains(s, `cron job usage_report: "*/2 * * * * * UTC" enabled, last enqueued `) {
		t.Fatalf("no listing of the cron job:\n%s", s)
	}
}
