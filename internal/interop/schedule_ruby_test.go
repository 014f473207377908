package interop

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// TestRubyPerformInRunsOnceAcrossThreeGoServers: Ruby schedules jobs with perform_in(1);
// three Go servers poll the schedule set (PollInterval 500 ms) and run them. Every job runs
// exactly once, on its queue, within a generous bound of its due time, and the schedule set
// ends empty.
func TestRubyPerformInRunsOnceAcrossThreeGoServers(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testRubyPerformInRunsOnceAcrossThreeGoServers)
}

func testRubyPerformInRunsOnceAcrossThreeGoServers(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const n = 300

	var mu sync.Mutex
	runs := map[string]int{}
	lateness := time.Duration(0)
	all := make(chan struct{})
	handler := sidekiq.HandlerFunc(func(_ context.Context, job *sidekiq.Job) error {
		mu.Lock()
		defer mu.Unlock()
		runs[job.JID]++
		// perform_in(1): due one second after it was created.
		if late := time.Since(job.CreatedAt.Add(time.Second)); late > lateness {
			lateness = late
		}
		if len(runs) == n {
			close(all)
		}
		return nil
	})
	for i := 0; i < 3; i++ {
		srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 4, Queues: []string{"later"}, PollInterval: 500 * time.Millisecond})
		srv.Handle("LaterWorker", handler)
		runGoServer(t, db, srv)
	}

	out := sk.Ruby(t, db.URL, `
class LaterWorker
  include Sidekiq::Worker
  sidekiq_options queue: "later"
  def perform(i); raise "must run in Go"; end
end
jids = (0...300).map { |i| LaterWorker.perform_in(1, i) }
puts jids.join(",")
`)
	jids := strings.Split(string(lastLine(out)), ",")
	if len(jids) != n {
		t.Fatalf("Ruby scheduled %d jobs, want %d", len(jids), n)
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("only %d of %d scheduled jobs ran within 30 s", len(runs), n)
	}
	// Let any duplicate promotion show up before counting.
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	for _, jid := range jids {
		if runs[jid] != 1 {
			t.Errorf("job %s ran %d times, want once", jid, runs[jid])
		}
	}
	if len(runs) != n {
		t.Errorf("%d distinct jobs ran, want %d", len(runs), n)
	}
	if z := db.Client.ZCard(ctx, "schedule").Val(); z != 0 {
		t.Errorf("schedule still holds %d jobs", z)
	}
	// Sidekiq's poller averages PollInterval across processes; allow several intervals on
	// a loaded machine, but not the 5 s default.
	if lateness > 4*time.Second {
		t.Errorf("latest job started %v after its due time", lateness)
	}
	t.Logf("%d jobs, latest start %v after due", n, lateness.Round(time.Millisecond))
}
