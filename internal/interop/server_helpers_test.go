package interop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// goRun is a Go Server running with Run in the background, as a worker binary runs it:
// a stop asked for from Ruby (Sidekiq::Process#stop!) ends Run by itself.
type goRun struct {
	srv  *sidekiq.Server
	done chan struct{} // closed when Run has returned
	err  error         // Run's result, valid once done is closed
}

// runGoServer runs srv until the test ends (or until it is stopped from Redis), and waits
// for its process record so Ruby can see it at once.
func runGoServer(t *testing.T, db *testsuite.RealRedisDB, srv *sidekiq.Server) *goRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &goRun{srv: srv, done: make(chan struct{})}
	go func() {
		r.err = srv.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(40 * time.Second):
			t.Errorf("Go server %s did not stop within 40 s", srv.Identity())
		}
	})
	testutil.Eventually(t, 10*time.Second, "the Go server's process record", func() bool {
		select {
		case <-r.done:
			t.Fatalf("Go server stopped at start: %v", r.err)
		default:
		}
		return db.Client.SIsMember(context.Background(), "processes", srv.Identity()).Val()
	})
	return r
}

// blocker is a handler whose runs block until release is called (or their context is
// cancelled), so a test can look at a Go process with a known set of running jobs.
type blocker struct {
	started  chan string // a run's jid, sent when it begins
	released chan struct{}
	once     sync.Once
	mu       sync.Mutex
	finished []string // jids of runs that returned nil
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), released: make(chan struct{})}
}

// Perform implements sidekiq.Handler.
func (b *blocker) Perform(ctx context.Context, job *sidekiq.Job) error {
	jid := job.JID
	b.started <- jid
	select {
	case <-b.released:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.finished = append(b.finished, jid)
	b.mu.Unlock()
	return nil
}

// release lets every blocked run (and every later one) return.
func (b *blocker) release() { b.once.Do(func() { close(b.released) }) }

// waitStarted returns the jids of the next n runs to begin, failing the test after d.
func (b *blocker) waitStarted(t *testing.T, n int, d time.Duration) []string {
	t.Helper()
	timeout := time.After(d)
	var jids []string
	for len(jids) < n {
		select {
		case jid := <-b.started:
			jids = append(jids, jid)
		case <-timeout:
			t.Fatalf("%d of %d blocking jobs started within %v", len(jids), n, d)
		}
	}
	return jids
}

func (b *blocker) done() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.finished...)
}

// stopGoServer stops srv (for servers run with Start) and fails the test on an error.
func stopGoServer(t *testing.T, srv *sidekiq.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop: %v", err)
	}
}

// rubyProcessReport defines ferry_process(id), the Go process as Sidekiq::ProcessSet shows
// it (nil when it is not listed), ferry_work(id), its running jobs as Sidekiq::Workers
// lists them, and ferry_wait(seconds) { cond }, which polls cond every 50 ms and returns
// whether it came true in time.
const rubyProcessReport = `
def ferry_process(id)
  p = Sidekiq::ProcessSet.new.find { |x| x.identity == id }
  return nil unless p
  %w[identity hostname pid tag labels concurrency queues weights busy beat quiet started_at version].
    to_h { |k| [k, p[k]] }.merge("stopping" => p.stopping?, "now" => Time.now.to_f)
end

def ferry_work(id)
  out = []
  Sidekiq::Workers.new.each do |pid, tid, w|
    next unless pid == id
    # 6.x yields the work hash; 7.x and 8.x a Sidekiq::Work (8.x without #[]), whose run_at
    # is Time.at(the stored value): the raw value is read to check it is integer seconds.
    h = w.is_a?(Hash) ? w : w.instance_variable_get(:@hsh)
    job = w.is_a?(Hash) ? w["payload"] : w.job
    out << {"tid" => tid, "queue" => h["queue"], "class" => job["class"],
            "jid" => job["jid"], "args" => job["args"], "run_at" => h["run_at"]}
  end
  out
end

def ferry_wait(seconds)
  deadline = Time.now + seconds
  until yield
    return false if Time.now > deadline
    sleep 0.05
  end
  true
end
`
