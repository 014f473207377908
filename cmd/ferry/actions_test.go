package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/testutil"
)

// TestRetryAllThenRubySeesJobsQueued is the example: after `ferry retry --all`,
// Ruby sees the retry set empty and the jobs queued.
func TestRetryAllThenRubySeesJobsQueued(t *testing.T) {
	t.Parallel()
	db, _ := rubyDB(t)
	r := must(t, exitOK, db.URL, runOpts{}, "retry", "--all", "--yes")
	if strings.TrimSpace(r.stdout) != "Retried 4 entries of the retry set onto their queues." {
		t.Fatalf("stdout %q", r.stdout)
	}
	out := testsuite.Ruby(t, db.URL, `
q = Sidekiq::Queue.new("default")
print [Sidekiq::RetrySet.new.size, q.size, q.map(&:klass).sort.uniq, q.map { |j| j["retry_count"] }.compact].inspect`)
	if strings.TrimSpace(out) != `[0, 6, ["FailJob", "OkJob"], [-1, -1, -1, -1]]` {
		t.Fatalf("Ruby sees %s", out)
	}

	var res resultJSON
	r = must(t, exitOK, db.URL, runOpts{}, "retry", "--from", "dead", "--all", "--yes", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Action != "retry" || res.From != "dead" || res.Matched != 2 || res.Done != 2 || res.Gone != 0 || len(res.NotFound) != 0 {
		t.Fatalf("retry --from dead --json = %+v", res)
	}
	out = testsuite.Ruby(t, db.URL, `print [Sidekiq::DeadSet.new.size, Sidekiq::Queue.new("critical").size].inspect`)
	if strings.TrimSpace(out) != "[0, 2]" {
		t.Fatalf("Ruby sees %s", out)
	}
}

// TestBulkConfirmation: a bulk action never prompts when standard input is not a
// terminal (it needs --yes), and prompts on one.
func TestBulkConfirmation(t *testing.T) {
	t.Parallel()
	db, _ := rubyDB(t)
	ctx := context.Background()

	r := must(t, exitRefused, db.URL, runOpts{}, "retry", "--all")
	contains(t, "stderr", r.stderr, "standard input is not a terminal", "--yes")
	if strings.Contains(r.stderr, "[y/N]") {
		t.Fatalf("prompted without a terminal: %s", r.stderr)
	}
	must(t, exitRefused, db.URL, runOpts{}, "delete", "--from", "dead", "--class", "DieJob")
	must(t, exitRefused, db.URL, runOpts{}, "stop", "--all")

	r = must(t, exitRefused, db.URL, runOpts{tty: true, stdin: "n\n"}, "kill", "--all")
	contains(t, "prompt", r.stderr, "Kill all 4 entries of the retry set? [y/N]", "not confirmed")
	if n := db.Client.ZCard(ctx, "retry").Val(); n != 4 {
		t.Fatalf("retry set has %d entries after refusals, want 4", n)
	}

	r = must(t, exitOK, db.URL, runOpts{tty: true, stdin: "y\n"}, "kill", "--error", "bad input")
	contains(t, "prompt", r.stderr, `Kill every entry of the retry set with error containing "bad input"? [y/N]`)
	contains(t, "stdout", r.stdout, "Killed 4 entries of the retry set to the dead set.")
	out := testsuite.Ruby(t, db.URL, `print [Sidekiq::RetrySet.new.size, Sidekiq::DeadSet.new.size].inspect`)
	if strings.TrimSpace(out) != "[0, 6]" {
		t.Fatalf("Ruby sees %s", out)
	}

	// By jid: no prompt.
	jid := db.Client.ZRange(ctx, "dead", 0, 0).Val()[0]
	var e struct{ JID string }
	_ = json.Unmarshal([]byte(jid), &e)
	r = must(t, exitOK, db.URL, runOpts{}, "delete", "--from", "dead", e.JID)
	contains(t, "stdout", r.stdout, "Deleted 1 entry of the dead set.")
}

func TestActionsByJIDAndFilter(t *testing.T) {
	t.Parallel()
	db, jids := rubyDB(t)
	ctx := context.Background()

	r := must(t, exitOK, db.URL, runOpts{}, "kill", jids[0], jids[1])
	contains(t, "kill", r.stdout, "Killed 2 entries of the retry set to the dead set.")
	r = must(t, exitNotFound, db.URL, runOpts{}, "retry", jids[2], jids[0])
	contains(t, "retry", r.stdout, "Retried 1 entry of the retry set onto its queue.")
	contains(t, "retry", r.stderr, "not in the retry set: "+jids[0])

	r = must(t, exitOK, db.URL, runOpts{}, "delete", "--from", "dead", "--older-than", "1h", "--yes")
	contains(t, "delete", r.stdout, "Deleted 0 entries of the dead set.")
	r = must(t, exitOK, db.URL, runOpts{}, "delete", "--from", "dead", "--class", "FailJob", "--dry-run")
	contains(t, "dry run", r.stdout, "Would delete 2 entries of the dead set (dry run, nothing changed).")
	if n := db.Client.ZCard(ctx, "dead").Val(); n != 4 {
		t.Fatalf("dead set has %d after a dry run, want 4", n)
	}
	r = must(t, exitOK, db.URL, runOpts{}, "delete", "--from", "dead", "--error", "fatal", "--newer-than", "1h", "--yes")
	contains(t, "delete", r.stdout, "Deleted 2 entries of the dead set.")

	r = must(t, exitOK, db.URL, runOpts{}, "kill", "--from", "scheduled", "--queue", "low", "--yes", "--json")
	var res resultJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Done != 1 || res.From != "schedule" {
		t.Fatalf("kill --from scheduled: %v %s", err, r.stdout)
	}
	r = must(t, exitOK, db.URL, runOpts{}, "retry", "--from", "scheduled", "--class", "OkJob", "--yes")
	contains(t, "add to queue", r.stdout, "Retried 1 entry of the scheduled set onto its queue.")

	// A queue: delete one job by jid.
	var job struct{ JID string }
	_ = json.Unmarshal([]byte(db.Client.LIndex(ctx, "queue:low", 0).Val()), &job)
	r = must(t, exitOK, db.URL, runOpts{}, "delete", "--from", "queue:low", job.JID)
	contains(t, "queue delete", r.stdout, "Deleted 1 entry of queue low.")
	out := testsuite.Ruby(t, db.URL, `print [Sidekiq::Queue.new("low").size, Sidekiq::ScheduledSet.new.size, Sidekiq::DeadSet.new.size, Sidekiq::RetrySet.new.size].inspect`)
	if strings.TrimSpace(out) != "[0, 0, 3, 1]" {
		t.Fatalf("Ruby sees %s", out)
	}

	// An invalid payload is left in the dead set by retry, with exit 5.
	mustZAdd(t, db, "dead", `{"jid":"deadbeef","args":"not an array"`)
	r = must(t, exitPartial, db.URL, runOpts{}, "retry", "--from", "dead", "--all", "--yes")
	contains(t, "partial", r.stdout, "Retried 3 entries of the dead set onto their queues.", "1 entry left in place:")
	if n := db.Client.ZCard(ctx, "dead").Val(); n != 1 {
		t.Fatalf("dead set has %d, want the invalid entry", n)
	}
}

func mustZAdd(t *testing.T, db *testsuite.RealRedisDB, key, member string) {
	t.Helper()
	if err := db.Client.Do(context.Background(), "ZADD", key, "1", member).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	rdb, mr := testutil.NewEmbeddedRedis(t)
	url := "redis://" + mr.Addr()
	for _, args := range [][]string{
		{"retry"},
		{"retry", "--all", "abc"},
		{"retry", "--all", "--class", "X"},
		{"kill", "--from", "dead", "--all"},
		{"retry", "--from", "queue:default", "abc"},
		{"retry", "--from", "nowhere", "abc"},
		{"retries", "--older-than", "soon"},
		{"retries", "extra"},
		{"stats", "--days", "9999"},
		{"enqueue"},
		{"enqueue", "X", "not json"},
		{"enqueue", "X", `{"a":1}`},
		{"enqueue", "X", "[]", "--in", "1m", "--at", "2030-01-01T00:00:00Z"},
		{"enqueue", "X", "[]", "--retry", "maybe"},
		{"quiet"},
		{"stop", "--all", "host:1:a"},
		{"watch", "--interval", "1ms"},
		{"--no-such-flag"},
		{"no-such-command"},
		{"jobs"},
		{"stats", "--time-format", "weeks"},
	} {
		r := ferry(t, url, runOpts{}, args...)
		if r.code != exitUsage {
			t.Errorf("ferry %s: %s\nwant exit %d", strings.Join(args, " "), r, exitUsage)
		}
		if r.stdout != "" && !strings.HasPrefix(args[0], "--") {
			t.Errorf("ferry %s wrote to stdout: %q", strings.Join(args, " "), r.stdout)
		}
	}
	if n := rdb.DBSize(context.Background()).Val(); n != 0 {
		t.Fatalf("usage errors wrote %d keys", n)
	}
}
