package bus_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// recorder collects the events subscribers receive, per subscription.
type recorder struct {
	mu     sync.Mutex
	got    map[string][]*bus.Event // "<app>/<sub key>" -> events
	notify chan struct{}
}

func newRecorder() *recorder {
	return &recorder{got: map[string][]*bus.Event{}, notify: make(chan struct{}, 1)}
}

// handler returns a subscriber that records its events.
func (r *recorder) handler() bus.Handler {
	return bus.HandlerFunc(func(ctx context.Context, ev *bus.Event) error {
		r.add(ev)
		return nil
	})
}

func (r *recorder) add(ev *bus.Event) {
	r.mu.Lock()
	k := ev.AppKey() + "/" + ev.SubscriptionKey()
	r.got[k] = append(r.got[k], ev)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) events(key string) []*bus.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bus.Event(nil), r.got[key]...)
}

func (r *recorder) count(key string) int { return len(r.events(key)) }

// waitFor waits until cond holds, woken by each recorded event (and a slow tick for state
// that changes elsewhere).
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-r.notify:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// serverConfig is a fast-polling server configuration for tests.
func serverConfig(queues ...string) *sidekiq.Config {
	return &sidekiq.Config{
		Queues:          queues,
		Concurrency:     4,
		PollInterval:    50 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
		RetryDelay:      func(int, error, *sidekiq.Job) time.Duration { return 100 * time.Millisecond },
	}
}

// startServer starts srv and stops it when the test ends (or when stop is called).
func startServer(t *testing.T, srv *sidekiq.Server) (stop func()) {
	t.Helper()
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("starting server: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Stop(ctx); err != nil {
				t.Errorf("stopping server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// queueJobs returns the jobs waiting in a queue, oldest first.
func queueJobs(t *testing.T, rdb redis.UniversalClient, queue string) []*sidekiq.Job {
	t.Helper()
	jobs, err := testutil.Enqueued(context.Background(), rdb, "", queue)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// eventOf decodes the event carried by a QueueBus::Worker job.
func eventOf(t *testing.T, job *sidekiq.Job) map[string]any {
	t.Helper()
	var args []string
	if err := json.Unmarshal(job.Args, &args); err != nil || len(args) != 1 {
		t.Fatalf("bus job args %s: want one JSON string (%v)", job.Args, err)
	}
	dec := json.NewDecoder(strings.NewReader(args[0]))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("bus job arg %q: %v", args[0], err)
	}
	return ev
}

// keysOf returns the ordered keys of the JSON object in a bus job's argument.
func keysOf(t *testing.T, job *sidekiq.Job) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal(job.Args, &args); err != nil || len(args) != 1 {
		t.Fatalf("bus job args %s: %v", job.Args, err)
	}
	dec := json.NewDecoder(strings.NewReader(args[0]))
	var keys []string
	depth := 0
	expectKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				depth++
				expectKey = depth == 1
			case '}':
				depth--
				expectKey = depth == 1
			case '[':
				depth++
			case ']':
				depth--
				expectKey = depth == 1
			}
		default:
			if depth == 1 && expectKey {
				keys = append(keys, v.(string))
				expectKey = false
			} else if depth == 1 {
				expectKey = true
			}
		}
	}
	return keys
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// num reads a json.Number attribute as int64.
func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v: %v", v, err)
	}
	return i
}

// realRedis claims a real Redis database (testsuite.RealRedis) and returns it with a client
// of generous timeouts. The tests count deliveries exactly, and on a loaded machine a call
// that timed out after Redis ran it would be retried by the server: a second delivery
// the bus allows (at least once) but the count would not.
func realRedis(tb testing.TB) *testsuite.RealRedisDB {
	tb.Helper()
	db := testsuite.RealRedis(tb)
	opts, err := redis.ParseURL(db.URL)
	if err != nil {
		tb.Fatal(err)
	}
	opts.ReadTimeout, opts.WriteTimeout = 20*time.Second, 20*time.Second
	patient := *db
	patient.Client = redis.NewClient(opts)
	tb.Cleanup(func() { _ = patient.Client.Close() })
	return &patient
}
