package testutil_test

import (
	"strings"
	"testing"

	"github.com/ferryhq/ferry/testutil"
)

func TestRubySeesSameDatabase(t *testing.T) {
	t.Parallel()
	testutil.RequireRuby(t)
	db := testutil.RealRedis(t)
	out := testutil.Ruby(t, db.URL, `
class HardJob; include Sidekiq::Worker; def perform(*a); end; end
HardJob.perform_async(1, "two")
print Sidekiq::Queue.new("default").size
`)
	if strings.TrimSpace(out) != "1" {
		t.Fatalf("Ruby saw %q jobs, want 1", out)
	}
	n, err := db.Client.LLen(t.Context(), "queue:default").Result()
	if err != nil || n != 1 {
		t.Fatalf("Go sees %d jobs (%v), want 1", n, err)
	}
}
