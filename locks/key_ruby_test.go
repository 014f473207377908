package locks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyKey computes the queue lock key in Ruby by the documented rule, from the Ruby objects
// (not from a payload), and pushes the same inputs with Sidekiq::Client.
const rubyKey = `
require "digest"
require "json"
inputs = {"user_id" => 7, "name" => "h\u00e9llo <a>&", "tags" => ["x", 1], "ratio" => 1.5, "locale" => "fr"}
Sidekiq::Client.push("class" => "Report", "queue" => "default", "args" => [inputs])
names = (inputs.keys - ["locale", "tz"]).sort
s = "Report\0" + names.map { |n| "#{n}\0#{JSON.generate(inputs[n])}\0" }.join
puts "ferry:lock:queue:" + Digest::SHA256.hexdigest(s)
`

func TestKeySameInRubyAndGo(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testKeySameInRubyAndGo)
}

func testKeySameInRubyAndGo(t *testing.T, sk *testsuite.RubySidekiq) {
	ctx := context.Background()
	r := testsuite.RealRedis(t)
	want := strings.TrimSpace(sk.Ruby(t, r.URL, rubyKey))

	rubyJobs, err := testutil.Enqueued(ctx, r.Client, "", "default")
	if err != nil || len(rubyJobs) != 1 {
		t.Fatalf("Ruby's job: %d jobs, err %v", len(rubyJobs), err)
	}
	lock := locks.QueueLock(r.Client)
	if got, err := lock.KeyFor(rubyJobs[0]); err != nil || got != want {
		t.Errorf("key of Ruby's payload = %q (%v), Ruby computed %q", got, err, want)
	}

	c := sidekiq.NewClient(r.Client, &sidekiq.ClientConfig{Namespace: "go"})
	c.Use(lock)
	in := map[string]any{"user_id": 7, "name": "héllo <a>&", "tags": []any{"x", 1}, "ratio": 1.5, "locale": "de"}
	if _, err := c.Push(ctx, "Report", []any{in}); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Client.Exists(ctx, "go:"+want).Result(); err != nil || v != 1 {
		t.Errorf("Go push did not take the key Ruby computed (%d, %v)", v, err)
	}
}
