package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestListingsOfRubyState(t *testing.T) {
	t.Parallel()
	db, jids := rubyDB(t)
	url := db.URL

	r := must(t, exitOK, url, runOpts{}, "stats")
	contains(t, "stats", r.stdout, "Retries", "Dead", "Enqueued", "Default queue latency")
	for _, line := range []string{"Retries                4", "Dead                   2", "Scheduled              2", "Enqueued               3"} {
		contains(t, "stats", strings.Join(strings.Fields(r.stdout), " "), strings.Join(strings.Fields(line), " "))
	}
	var st statsJSON
	r = must(t, exitOK, url, runOpts{}, "stats", "--json", "--days", "3")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, r.stdout)
	}
	if st.Retries != 4 || st.Dead != 2 || st.Scheduled != 2 || st.Enqueued != 3 || len(st.Queues) != 3 || len(st.History) != 3 {
		t.Fatalf("stats --json = %+v", st)
	}

	r = must(t, exitOK, url, runOpts{}, "queues")
	contains(t, "queues", r.stdout, "QUEUE", "critical", "default", "low")
	var qs []queueJSON
	r = must(t, exitOK, url, runOpts{}, "queues", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &qs); err != nil || len(qs) != 3 || qs[1].Name != "default" || qs[1].Size != 2 {
		t.Fatalf("queues --json: %v %+v", err, qs)
	}

	r = must(t, exitOK, url, runOpts{}, "retries")
	contains(t, "retries", r.stdout, "NEXT", "FailJob", "ArgumentError: bad input [0]", jids[0], "4 retries")
	var es []entryJSON
	r = must(t, exitOK, url, runOpts{}, "retries", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es) != 4 {
		t.Fatalf("retries --json: %v\n%s", err, r.stdout)
	}
	for _, e := range es {
		if e.Class != "FailJob" || e.RetryCount == nil || *e.RetryCount != 0 || e.ErrorClass != "ArgumentError" ||
			e.Set != "retry" || e.At == nil || len(e.Payload) == 0 || e.Queue != "default" {
			t.Fatalf("retry entry %+v", e)
		}
	}

	r = must(t, exitOK, url, runOpts{}, "retries", "--error", "INPUT [2]")
	contains(t, "filtered retries", r.stdout, "bad input [2]", "1 retries matched")
	r = must(t, exitOK, url, runOpts{}, "retries", "--limit", "1")
	contains(t, "limited retries", r.stdout, "1 retries shown; more match", "4 in all")
	r = must(t, exitOK, url, runOpts{}, "retries", "--jid", jids[1], "--json")
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es) != 1 || es[0].JID != jids[1] {
		t.Fatalf("retries --jid: %v %s", err, r.stdout)
	}
	r = must(t, exitNotFound, url, runOpts{}, "retries", "--jid", "feedfacefeedfacefeedface")
	contains(t, "missing jid", r.stderr, "not in the retry set: feedfacefeedfacefeedface")

	r = must(t, exitOK, url, runOpts{}, "dead", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es) != 2 {
		t.Fatalf("dead --json: %v %s", err, r.stdout)
	}
	if es[0].ErrorMessage != "fatal <&> error" || es[0].Queue != "critical" || es[0].Class != "DieJob" {
		t.Fatalf("dead entry %+v", es[0])
	}
	contains(t, "dead --json", r.stdout, `"fatal <&> error"`) // not \u003c-escaped
	r = must(t, exitOK, url, runOpts{}, "dead")
	contains(t, "dead", r.stdout, "DIED", "DieJob", "RuntimeError: fatal <&> error", "critical")

	r = must(t, exitOK, url, runOpts{}, "scheduled")
	contains(t, "scheduled", r.stdout, "RUNS", "in 59m", "in 1h59m", `["later"]`, "2 scheduled")
	r = must(t, exitOK, url, runOpts{}, "scheduled", "--queue", "low")
	contains(t, "scheduled --queue", r.stdout, "much later", "1 scheduled matched")

	r = must(t, exitOK, url, runOpts{}, "jobs", "default")
	contains(t, "jobs", r.stdout, "WAITING", "OkJob", "[1]", "[2]", "2 jobs")
	if strings.Index(r.stdout, "[1]") > strings.Index(r.stdout, "[2]") {
		t.Fatalf("jobs not oldest first:\n%s", r.stdout)
	}
	r = must(t, exitOK, url, runOpts{}, "jobs", "low", "--json")
	es = nil
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es) != 1 || string(es[0].Args) != "[3]" || es[0].Set != "" {
		t.Fatalf("jobs --json: %v %s", err, r.stdout)
	}
	must(t, exitOK, url, runOpts{}, "jobs", "critical") // in the queues set, empty
	r = must(t, exitNotFound, url, runOpts{}, "jobs", "nope")
	contains(t, "unknown queue", r.stderr, `no queue "nope"`)
}

func TestPayloadTextIsMadeSafe(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"plain", "plain"},
		{"esc\x1b]0;pwned\x07", "esc?]0;pwned?"},
		{"two\nlines", "two⏎lines"},
		{"tab\there", "tab?here"},
		{"bad\xffutf8", "bad?utf8"},
		{"bidi\u202eevil", "bidi?evil"},
	} {
		if got := clean(tt.in, 0); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := clean(strings.Repeat("x", 100), 10); got != "xxxxxxxxx…" {
		t.Errorf("cut: %q", got)
	}
}
