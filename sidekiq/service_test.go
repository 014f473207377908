package sidekiq_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// recordingService notes its Start and Stop calls in a shared log.
type recordingService struct {
	name     string
	log      *[]string
	mu       *sync.Mutex
	startErr error
}

func (r *recordingService) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "start "+r.name)
	return r.startErr
}

func (r *recordingService) Stop(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "stop "+r.name)
	return nil
}

// TestServicesStartAndStopWithServer: services start in order after the first heartbeat
// and stop in reverse order when the server stops.
func TestServicesStartAndStopWithServer(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	var log []string
	var mu sync.Mutex
	srv := sidekiq.NewServer(rdb, nil)
	srv.AddService(&recordingService{name: "a", log: &log, mu: &mu})
	srv.AddService(&recordingService{name: "b", log: &log, mu: &mu})
	if srv.Ready() {
		t.Fatal("Ready before Start")
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !srv.Ready() {
		t.Fatal("not Ready after Start")
	}
	srv.Quiet()
	if srv.Ready() {
		t.Fatal("Ready while quiet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "stop b", "stop a"}
	if !slices.Equal(log, want) {
		t.Fatalf("calls %v, want %v", log, want)
	}
}

// TestServiceStartErrorFailsStart: a service that cannot start fails Server.Start, the
// services already started are stopped, and the process is no longer listed.
func TestServiceStartErrorFailsStart(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	var log []string
	var mu sync.Mutex
	boom := errors.New("boom")
	srv := sidekiq.NewServer(rdb, nil)
	srv.AddService(&recordingService{name: "a", log: &log, mu: &mu})
	srv.AddService(&recordingService{name: "b", log: &log, mu: &mu, startErr: boom})
	err := srv.Start(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("Start: %v, want boom", err)
	}
	want := []string{"start a", "start b", "stop a"}
	if !slices.Equal(log, want) {
		t.Fatalf("calls %v, want %v", log, want)
	}
	if n := rdb.SCard(context.Background(), "processes").Val(); n != 0 {
		t.Fatalf("%d processes listed after a failed start", n)
	}
}

// eventLog is an Observer that keeps every event.
type eventLog struct {
	sidekiq.ObserverDefaults
	mu      sync.Mutex
	events  []sidekiq.JobEvent
	fetched int
}

func (e *eventLog) JobFinished(ev *sidekiq.JobEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, *ev)
}

func (e *eventLog) Fetched(_ string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fetched += n
}

func (e *eventLog) byClass() map[string]sidekiq.JobEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]sidekiq.JobEvent{}
	for _, ev := range e.events {
		out[ev.Class] = ev
	}
	return out
}

// TestObserverHearsEveryOutcome: each way a job can end reaches observers with its
// outcome, class, queue and error.
func TestObserverHearsEveryOutcome(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	obs := &eventLog{}
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: []string{"q"}})
	srv.Observe(obs)
	fail := errors.New("fail")
	srv.Handle("Ok", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return nil }))
	srv.Handle("Retried", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return fail }))
	srv.Handle("Dead", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return sidekiq.Discard(fail) }))
	srv.Handle("Dropped", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return fail }))
	srv.Handle("Later", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return sidekiq.RetryIn(time.Hour, nil) }))
	c := sidekiq.NewClient(rdb, nil)
	for _, class := range []string{"Ok", "Retried", "Dead", "Later"} {
		if _, err := c.Push(ctx, class, nil, sidekiq.Queue("q")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Push(ctx, "Dropped", nil, sidekiq.Queue("q"), sidekiq.NoRetry()); err != nil {
		t.Fatal(err)
	}
	if err := rdb.LPush(ctx, "queue:q", `{"class":1}`).Err(); err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	waitFor(t, "six events", func() bool { return len(obs.byClass()) == 6 })
	want := map[string]sidekiq.Outcome{
		"Ok": sidekiq.OutcomeSucceeded, "Retried": sidekiq.OutcomeRetried, "Dead": sidekiq.OutcomeDead,
		"Dropped": sidekiq.OutcomeDropped, "Later": sidekiq.OutcomeRescheduled, "": sidekiq.OutcomeDead,
	}
	got := obs.byClass()
	for class, outcome := range want {
		ev := got[class]
		if ev.Outcome != outcome || ev.Queue != "q" {
			t.Errorf("%q: outcome %v queue %q, want %v in q", class, ev.Outcome, ev.Queue, outcome)
		}
		if (class == "Ok") != (ev.Err == nil) {
			t.Errorf("%q: err %v", class, ev.Err)
		}
	}
	if got[""].Job != nil || !errors.Is(got[""].Err, sidekiq.ErrInvalidPayload) {
		t.Errorf("invalid payload event: job %v err %v", got[""].Job, got[""].Err)
	}
	if got["Ok"].Latency < 0 || got["Ok"].Job == nil || got["Ok"].Job.Class != "Ok" {
		t.Errorf("Ok event: %+v", got["Ok"])
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.fetched != 6 {
		t.Errorf("fetched %d jobs, want 6", obs.fetched)
	}
}
