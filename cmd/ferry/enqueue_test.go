package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
)

func TestEnqueueRubyReads(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	r := must(t, exitOK, db.URL, runOpts{}, "enqueue", "HardJob", `[1, "two", {"big": 12345678901234567890123}]`, "--queue", "critical", "--retry", "3")
	contains(t, "enqueue", r.stdout, "Enqueued HardJob on queue critical: jid ")
	jid := strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, " ")+1:])
	out := testsuite.Ruby(t, db.URL, `
j = Sidekiq::Queue.new("critical").first
print JSON.generate([j.klass, j.jid, j.args, j["retry"], j.enqueued_at.nil?, Sidekiq::Queue.all.map(&:name)])`)
	want := `["HardJob","` + jid + `",[1,"two",{"big":12345678901234567890123}],3,false,["critical"]]`
	if strings.TrimSpace(out) != want {
		t.Fatalf("Ruby reads %s\nwant %s", out, want)
	}

	var ej enqueueJSON
	r = must(t, exitOK, db.URL, runOpts{}, "enqueue", "LaterJob", "--in", "2h", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &ej); err != nil || ej.At == nil || ej.Queue != "default" || ej.Class != "LaterJob" {
		t.Fatalf("enqueue --json: %v %s", err, r.stdout)
	}
	at := time.Time(*ej.At)
	out = testsuite.Ruby(t, db.URL, `
e = Sidekiq::ScheduledSet.new.first
print JSON.generate([e.klass, e.jid, e.args, e.at.to_f])`)
	var got []any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got[0] != "LaterJob" || got[1] != ej.JID {
		t.Fatalf("Ruby reads %s", out)
	}
	if d := got[3].(float64) - float64(at.UnixNano())/1e9; d > 0.01 || d < -0.01 {
		t.Fatalf("Ruby's run time %v, ferry said %v", got[3], at)
	}
	if d := time.Until(at); d < 119*time.Minute || d > 121*time.Minute {
		t.Fatalf("scheduled %v from now, want 2h", d)
	}

	r = must(t, exitOK, db.URL, runOpts{}, "enqueue", "AtJob", "[]", "--at", "2030-01-02T03:04:05Z")
	contains(t, "enqueue --at", r.stdout, "Scheduled AtJob on queue default for 2030-01-02T03:04:05Z")
}
