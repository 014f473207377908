package testsuite_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
)

func TestRubySeesSameDatabase(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, func(t *testing.T, sk *testsuite.RubySidekiq) {
		db := testsuite.RealRedis(t)
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
	testsuite.ForEachSidekiq(t, func(t *testing.T, sk *testsuite.RubySidekiq) {
		out := strings.TrimSpace(sk.Ruby(t, "redis://127.0.0.1:1/0", `print FERRY_AJ_ADAPTER`, testsuite.WithActiveJob()))
		fromPeer := strings.Contains(out, "/sidekiq-v"+sk.Version()+"/lib/")
		if fromPeer != (sk.Major() >= 7) {
			t.Errorf("ActiveJob's Sidekiq adapter loaded from %q", out)
		}
	})
}

// Scripts run in children forked from one loaded Ruby: none sees what another defined or
// set, each has its own environment, and exit statuses, stderr, uncaught exceptions and
// timeouts come back as with a Ruby process of its own.
func TestRubyScriptsAreIsolated(t *testing.T) {
	t.Parallel()
	sk := testsuite.Sidekiq6
	sk.Require(t)
	const url = "redis://127.0.0.1:1/0" // never connected to
	first := sk.Ruby(t, url, `class Leak; end; $leak = 1; ENV["FERRY_LEAK"] = "1"; Sidekiq.strict_args!(false); print ENV["FERRY_X"]`,
		testsuite.WithEnv("FERRY_X=first"))
	if first != "first" {
		t.Errorf("first script printed %q, want its FERRY_X", first)
	}
	second := sk.Ruby(t, url, `print [defined?(Leak), $leak, ENV["FERRY_LEAK"], ENV["FERRY_X"]].inspect`)
	if second != "[nil, nil, nil, nil]" {
		t.Errorf("second script sees %s of the first", second)
	}

	out, err := sk.RunRuby(url, `puts "out"; warn "to stderr"; exit 3`)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "to stderr") || out != "out\n" {
		t.Errorf("exit 3: out %q, err %v", out, err)
	}
	_, err = sk.RunRuby(url, `raise ArgumentError, "boom from ruby"`)
	if err == nil || !strings.Contains(err.Error(), "boom from ruby (ArgumentError)") {
		t.Errorf("uncaught exception: err %v", err)
	}
	_, err = sk.RunRuby(url, `sleep 30`, testsuite.WithTimeout(500*time.Millisecond))
	if err == nil {
		t.Error("a script past its timeout returned no error")
	}
}
