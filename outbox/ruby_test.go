package outbox_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
)

// Each release of Ruby Sidekiq (6.4.1, 7.3.10, 8.1.7) reads relay-delivered jobs (queued
// and scheduled) through its own API, and sees the same keys, with the same value types, as
// in a job its own Sidekiq::Client pushed; only the timestamps differ in type on 8.x, which
// writes integer milliseconds where the relay writes float seconds (both read by 8.x).
func TestRubyReadsDeliveredJobs(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyReadsDeliveredJobs)
}

func testRubyReadsDeliveredJobs(t *testing.T, sk *testsuite.RubySidekiq) {
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	now := pushInTx(t, db, table, 1, true)[0]
	later := pushInTx(t, db, table, 1, true, outbox.In(time.Hour))[0]
	drain(t, outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table}))

	out := sk.Ruby(t, rr.URL, `
require "json"
Sidekiq::Client.push("class" => "WelcomeEmailJob", "args" => [0, "user@example.com"], "queue" => "ruby")
shape = ->(item) { item.keys.sort.map { |k| [k, item[k].class.name] } }
q = Sidekiq::Queue.new("default").to_a
s = Sidekiq::ScheduledSet.new.to_a
r = Sidekiq::Queue.new("ruby").to_a
puts JSON.generate({
  "queued" => q.map { |j| [j.klass, j.args, j.jid, j.enqueued_at.nil?] },
  "scheduled" => s.map { |j| [j.klass, j.jid, ((j.at - Time.now) / 60.0).round] },
  "ours" => shape.(q.first.item),
  "ruby" => shape.(r.first.item),
})
`)
	var got struct {
		Queued    [][]any `json:"queued"`
		Scheduled [][]any `json:"scheduled"`
		Ours      [][]string
		Ruby      [][]string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
		t.Fatalf("Ruby said %q: %v", out, err)
	}
	if len(got.Queued) != 1 || got.Queued[0][0] != "WelcomeEmailJob" || got.Queued[0][2] != now || got.Queued[0][3] != false {
		t.Errorf("Ruby's queue: %v, want WelcomeEmailJob %s with enqueued_at", got.Queued, now)
	}
	if args, _ := json.Marshal(got.Queued[0][1]); string(args) != `[0,"user@example.com"]` {
		t.Errorf("Ruby reads args %s", args)
	}
	if len(got.Scheduled) != 1 || got.Scheduled[0][1] != later || got.Scheduled[0][2] != float64(60) {
		t.Errorf("Ruby's schedule: %v, want %s in 60 minutes", got.Scheduled, later)
	}
	if sk.Millis() {
		// 8.x's own client writes Integer milliseconds; the relay writes float seconds,
		// which 8.x reads as well (its API showed the schedule above).
		for _, kv := range got.Ruby {
			if (kv[0] == "created_at" || kv[0] == "enqueued_at") && kv[1] == "Integer" {
				kv[1] = "Float"
			}
		}
	}
	ours, _ := json.Marshal(got.Ours)
	ruby, _ := json.Marshal(got.Ruby)
	if string(ours) != string(ruby) {
		t.Errorf("delivered job's keys and types %s\nRuby's pushed job's        %s", ours, ruby)
	}
}
