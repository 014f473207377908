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
	if err := runBench(t.Context(), db.Client, db.URL, runOptions{jobs: 300, conc: 10, latencyN: 20, ruby: true}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Ruby sidekiq 6.4.1", "Ferry (reliable fetch)", "Ferry / Ruby:", "p50", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunCommandInstrumented: -metrics and -tracing attach to the Ferry server (its line
// says so) and the jobs still all run.
func TestRunCommandInstrumented(t *testing.T) {
	testutil.RequireRuby(t)
	db := testutil.RealRedis(t)
	var out bytes.Buffer
	o := runOptions{jobs: 300, conc: 10, latencyN: 20, metrics: true, tracing: true}
	if err := runBench(t.Context(), db.Client, db.URL, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Ferry (reliable fetch) +metrics +tracing") || strings.Contains(out.String(), "Ruby sidekiq") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestPushCommand runs `ferrybench push` with a few jobs: every method fills the queue with
// the jobs it claims to have pushed, and the report gives both ratios.
func TestPushCommand(t *testing.T) {
	testutil.RequireRuby(t)
	db := testutil.RealRedis(t)
	var out bytes.Buffer
	if err := pushBench(t.Context(), db.Client, db.URL, pushOptions{jobs: 200, goroutines: 4, ruby: true}, &out); err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Go PushBulk", "Ruby push_bulk", "Go PushBulk / Ruby push_bulk:", "Ruby Sidekiq::Client.push:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestClaimsItsDatabase: ferrybench refuses database 0 and a database the test suite holds.
func TestClaimsItsDatabase(t *testing.T) {
	db := testutil.RealRedis(t)
	if _, err := openBenchRedis(db.URL); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("openBenchRedis on a claimed database = %v, want a refusal", err)
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
