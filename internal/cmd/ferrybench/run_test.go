package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/testutil"
)

// TestRunCommand runs `ferrybench run` end to end with a few jobs, so the load tool cannot
// rot: Ruby pre-loads, the sidekiq binary and Ferry each drain the queue, and the report
// names both with a ratio.
func TestRunCommand(t *testing.T) {
	testutil.RequireRuby(t)
	db := testutil.RealRedis(t)
	var out bytes.Buffer
	if err := cmdRun([]string{"-redis", db.URL, "-n", "300", "-latency-n", "20"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Ruby sidekiq 6.4.1", "Ferry (reliable fetch)", "Ferry / Ruby:", "p50", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRefusesDatabaseZero(t *testing.T) {
	t.Parallel()
	if _, err := openBenchRedis("redis://127.0.0.1:6379/0"); err == nil || !strings.Contains(err.Error(), "database 0") {
		t.Fatalf("openBenchRedis(db 0) = %v, want a refusal", err)
	}
	if _, err := openBenchRedis("redis://127.0.0.1:6379"); err == nil {
		t.Fatal("a URL without a database (database 0) was accepted")
	}
}
