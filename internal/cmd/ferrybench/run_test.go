package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
)

// TestRunCommand runs `ferrybench run` end to end with a few jobs, so the load tool cannot
// rot: Ruby pre-loads, the sidekiq binary and a Ferry child process each drain the queue,
// and the report names both with every figure, the ratio and the commands Redis ran.
func TestRunCommand(t *testing.T) {
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	var out bytes.Buffer
	if err := runBench(t.Context(), db.Client, db.URL, runOptions{jobs: 300, conc: 10, latencyN: 20, ruby: true}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"Ruby sidekiq 6.4.1 -c 10", "Ferry (reliable fetch) -c 10", "Ferry / Ruby:", "p50", "p99",
		"jobs/s", "Redis µs/job", "Redis CPU %", "cmds/job", "scripts/job", "worker µs/job", "jobs/CPU-s", "peak RSS MB",
		"by calls: ", "by time:", "issue 20 targets", "Ferry ≥ 20× Ruby Sidekiq", "shared",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunCommandInstrumented: -metrics and -tracing attach to the Ferry server (its line
// says so) and the jobs still all run.
func TestRunCommandInstrumented(t *testing.T) {
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	var out bytes.Buffer
	o := runOptions{jobs: 300, conc: 10, latencyN: 20, metrics: true, tracing: true}
	if err := runBench(t.Context(), db.Client, db.URL, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Ferry (reliable fetch) +metrics +tracing") || strings.Contains(out.String(), "Ruby sidekiq") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestRunRounds: with -rounds 2 each worker drains once per round, in turn, and the
// summary gives medians with their range.
func TestRunRounds(t *testing.T) {
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	var out bytes.Buffer
	o := runOptions{jobs: 200, conc: 5, rounds: 2, top: 3}
	if err := runBench(t.Context(), db.Client, db.URL, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	r1, r2 := strings.Index(s, "round 1  Ferry (reliable fetch) -c 5"), strings.Index(s, "round 2  Ferry (reliable fetch) -c 5")
	if r1 < 0 || r2 < r1 || !strings.Contains(s, "median (min–max) over 2 rounds") || !strings.Contains(s, "by calls:") {
		t.Errorf("report:\n%s", s)
	}
}

// TestRunIOWorkload: Ruby and Ferry at several concurrencies drain jobs that sleep, and
// the report compares jobs/s and jobs per second of worker CPU.
func TestRunIOWorkload(t *testing.T) {
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	var out bytes.Buffer
	o := runOptions{ruby: true, workloads: []string{"io"}, ioJobs: 100, ioConc: []int{10, 100}, ioRubyConc: []int{10}}
	if err := runBench(t.Context(), db.Client, db.URL, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"io: 100 jobs", "Ruby sidekiq 6.4.1 -c 10", "Ferry (reliable fetch) -c 100",
		"Ferry -c 10 / Ruby -c 10:", "Ferry -c 100 / Ruby -c 10:", "jobs per second of worker CPU",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "latency") {
		t.Errorf("the io workload alone measured latency:\n%s", out.String())
	}
}

// TestRunFleetAndRSSWorkloads: three Ferry processes share the queue (their counts add up
// to every job), Redis's utilisation is reported, and the rss workload checks issue 20's
// memory target.
func TestRunFleetAndRSSWorkloads(t *testing.T) {
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	var out bytes.Buffer
	o := runOptions{jobs: 300, workloads: []string{"fleet", "rss"}, fleetJobs: 600, fleetProcs: 3, rssConc: 100}
	if err := runBench(t.Context(), db.Client, db.URL, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"Ferry (reliable fetch) -c 10 ×3 processes", "Ferry ×3 / Ferry ×1:", "Redis CPU during the drain:",
		"Ferry (reliable fetch) -c 100", "peak RSS < 30 MB at concurrency 100",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunGoWorkers2 drives the go-workers2 harness when FERRYBENCH_GOWORKERS2 names its
// binary (make goworkers2). It cannot be built in CI: go-workers2 is not on the module
// proxy, and its source is not part of this repository.
func TestRunGoWorkers2(t *testing.T) {
	bin := os.Getenv("FERRYBENCH_GOWORKERS2")
	if bin == "" {
		t.Skip("FERRYBENCH_GOWORKERS2 is not set: build the harness with make goworkers2 (BENCHMARKS.md)")
	}
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	var out bytes.Buffer
	o := runOptions{jobs: 300, goWorkers2: bin}
	if err := runBench(t.Context(), db.Client, db.URL, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"go-workers2 pool 30 -c 10", "Ferry / go-workers2:", "brpoplpush 1.0", "lrem 1.0", "Ferry ≥ 15× go-workers2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunPrivateRedis: -redis-server starts a redis-server of ferrybench's own on a free
// port, measures there and stops it.
func TestRunPrivateRedis(t *testing.T) {
	testsuite.RequireRuby(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		testsuite.Unavailable(t, "redis-server not on PATH (make setup): %v", err)
	}
	var out bytes.Buffer
	if err := cmdRun([]string{"-redis-server", "redis-server", "-n", "200", "-ruby=false", "-latency-n", "5"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	i := strings.Index(s, "started by ferrybench for this run (pid ")
	if i < 0 || !strings.Contains(s, "Ferry (reliable fetch) -c 10") {
		t.Fatalf("report:\n%s", s)
	}
	var pid int
	if _, err := fmt.Sscanf(s[i:], "started by ferrybench for this run (pid %d)", &pid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the private redis-server (pid %d) still runs after the command", pid)
	}
}

// TestPushCommand runs `ferrybench push` with a few jobs: every method fills the queue with
// the jobs it claims to have pushed, and the report gives both ratios.
func TestPushCommand(t *testing.T) {
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
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
	db := testsuite.RealRedis(t)
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
