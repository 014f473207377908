package testutil_test

import (
	"strings"
	"testing"

	"github.com/ferryhq/ferry/testutil"
)

func TestRubySeesSameDatabase(t *testing.T) {
	t.Parallel()
	testutil.ForEachSidekiq(t, func(t *testing.T, sk *testutil.RubySidekiq) {
		db := testutil.RealRedis(t)
		out := sk.Ruby(t, db.URL, `
class HardJob; include Sidekiq::Worker; def perform(*a); end; end
HardJob.perform_async(1, "two")
print Sidekiq::VERSION, " ", Sidekiq::Queue.new("default").size
`)
		if got, want := strings.TrimSpace(out), sk.Version()+" 1"; got != want {
			t.Fatalf("Ruby printed %q, want %q (version and queue size)", got, want)
		}
		n, err := db.Client.LLen(t.Context(), "queue:default").Result()
		if err != nil || n != 1 {
			t.Fatalf("Go sees %d jobs (%v), want 1", n, err)
		}
	})
}

// Each release loads the ActiveJob adapter a Rails app on it would use: Rails' own for
// 6.4.1, Sidekiq's own (from the peers folder) for 7.3 and 8.1.
func TestRubyActiveJobAdapterPerRelease(t *testing.T) {
	t.Parallel()
	testutil.ForEachSidekiq(t, func(t *testing.T, sk *testutil.RubySidekiq) {
		out := strings.TrimSpace(sk.Ruby(t, "redis://127.0.0.1:1/0", `print FERRY_AJ_ADAPTER`, testutil.WithActiveJob()))
		fromPeer := strings.Contains(out, "/sidekiq-v"+sk.Version()+"/lib/")
		if fromPeer != (sk.Major() >= 7) {
			t.Errorf("ActiveJob's Sidekiq adapter loaded from %q", out)
		}
	})
}
