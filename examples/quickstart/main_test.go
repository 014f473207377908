package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstart runs the README's main command against the embedded Redis and checks that
// every job ran, the flaky one after a retry, and nothing was left behind.
func TestQuickstart(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`ran HardWorker("bob", 5, 3.0, map[vip:true])`,
		"ran IndexWorker[1]", "ran IndexWorker[2]", "ran IndexWorker[3]",
		`ran ReportWorker["daily"], scheduled`,
		"ran FlakyWorker again (retry_count 0): ok",
		"stat:processed=7 stat:failed=1, queues empty: true",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
