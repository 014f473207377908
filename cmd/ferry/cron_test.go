package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
)

// TestCronWithRubyJobs: `ferry cron` lists the jobs a Rails app defined with sidekiq-cron,
// as Ruby stores them; disable and enable switch them as the Web tab's buttons do, and
// Ruby sees the change; an unknown name exits 3.
func TestCronWithRubyJobs(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	testsuite.Ruby(t, db.URL, `
require "sidekiq-cron"
Sidekiq::Cron::Job.create(name: "nightly_report", cron: "0 3 * * *", class: "ReportWorker", queue: "low", args: ["daily"]) or raise "create"
Sidekiq::Cron::Job.create(name: "broken", cron: "not a spec", class: "X") && raise("a bad spec was accepted")
`)
	r := must(t, exitOK, db.URL, runOpts{}, "cron")
	contains(t, "cron", r.stdout, "NAME", "nightly_report", "0 3 * * *", "ReportWorker", "low", "enabled", "in ")

	r = must(t, exitOK, db.URL, runOpts{}, "cron", "--json")
	var jobs []cronJSON
	if err := json.Unmarshal([]byte(r.stdout), &jobs); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if len(jobs) != 1 || jobs[0].Name != "nightly_report" || jobs[0].Status != "enabled" || jobs[0].Next == nil || jobs[0].Class != "ReportWorker" {
		t.Fatalf("--json = %+v", jobs)
	}

	must(t, exitOK, db.URL, runOpts{}, "cron", "disable", "nightly_report")
	if got := strings.TrimSpace(testsuite.Ruby(t, db.URL, `require "sidekiq-cron"; print Sidekiq::Cron::Job.find("nightly_report").status`)); got != "disabled" {
		t.Fatalf("Ruby sees status %q after ferry cron disable", got)
	}
	contains(t, "cron", must(t, exitOK, db.URL, runOpts{}, "cron").stdout, "disabled")
	must(t, exitOK, db.URL, runOpts{}, "cron", "enable", "nightly_report")
	if got := strings.TrimSpace(testsuite.Ruby(t, db.URL, `require "sidekiq-cron"; print Sidekiq::Cron::Job.find("nightly_report").status`)); got != "enabled" {
		t.Fatalf("Ruby sees status %q after ferry cron enable", got)
	}
	r = must(t, exitNotFound, db.URL, runOpts{}, "cron", "disable", "no_such_job")
	contains(t, "stderr", r.stderr, "no_such_job")
}
