package interop

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestRubyRetryOptionsOnGoServer: jobs Ruby pushes with "retry": false, 0, and 1 with
// "dead": false, all failing in Go: false is dropped after one run (no retry, no dead
// entry), 0 goes to the dead set at once, 1 + dead:false runs twice and is then dropped.
func TestRubyRetryOptionsOnGoServer(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyRetryOptionsOnGoServer)
}

func testRubyRetryOptionsOnGoServer(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	out := sk.Ruby(t, db.URL, `
jids = {
  "false" => Sidekiq::Client.push("class" => "X", "args" => [1], "retry" => false),
  "zero" => Sidekiq::Client.push("class" => "X", "args" => [2], "retry" => 0),
  "one_no_dead" => Sidekiq::Client.push("class" => "X", "args" => [3], "retry" => 1, "dead" => false),
}
puts JSON.generate(jids)
`)
	var jids map[string]string
	mustUnmarshal(t, lastLine(out), &jids)
	var mu sync.Mutex
	runs := map[string]int{}
	deaths := map[string]int{}
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency:  3,
		PollInterval: 20 * time.Millisecond,
		RetryDelay:   func(int, error, *sidekiq.Job) time.Duration { return time.Millisecond },
		OnDeath: func(_ context.Context, j *sidekiq.Job, _ error) {
			mu.Lock()
			defer mu.Unlock()
			deaths[j.JID]++
		},
	})
	srv.Handle("X", sidekiq.HandlerFunc(func(_ context.Context, j *sidekiq.Job) error {
		mu.Lock()
		defer mu.Unlock()
		runs[j.JID]++
		return failingError{}
	}))
	runGoServer(t, db, srv)
	testutil.Eventually(t, 20*time.Second, "three deaths", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deaths) == 3
	})
	dead, err := db.Client.ZRange(t.Context(), "dead", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || !strings.Contains(dead[0], jids["zero"]) {
		t.Errorf("dead set = %q, want only the retry:0 job %s", dead, jids["zero"])
	}
	if n := db.Client.ZCard(t.Context(), "retry").Val(); n != 0 {
		t.Errorf("retry set has %d entries, want 0", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string]int{"false": 1, "zero": 1, "one_no_dead": 2} {
		if got := runs[jids[name]]; got != want {
			t.Errorf("retry %s: ran %d times, want %d", name, got, want)
		}
		if got := deaths[jids[name]]; got != 1 {
			t.Errorf("retry %s: OnDeath called %d times, want 1", name, got)
		}
	}
}
