package testutil_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends the goroutine, as
// the real one does, so that a failing assertion can itself be tested.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs f with a recorder and returns the Fatalf message, "" when f passed.
func fails(t *testing.T, f func(tb testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

func TestAssertions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	now := time.Unix(1795352598, 500000000)
	c := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: "app", Clock: testutil.NewFakeClock(now)})
	if _, err := c.Push(ctx, "HardWorker", []any{"bob", 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "HardWorker", []any{"ann", 1.0}, sidekiq.Queue("low")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "Later", []any{map[string]any{"b": 1, "a": 2}}, sidekiq.In(time.Hour)); err != nil {
		t.Fatal(err)
	}

	jobs, err := testutil.Enqueued(ctx, rdb, "app", "default")
	if err != nil || len(jobs) != 1 || jobs[0].Class != "HardWorker" {
		t.Fatalf("Enqueued = %v, %v; want the one HardWorker job", jobs, err)
	}
	if msg := fails(t, func(tb testing.TB) {
		testutil.RequireEnqueued(tb, rdb, "app", "default", "HardWorker", []any{"bob", 5})
		testutil.RequireEnqueued(tb, rdb, "app", "low", "HardWorker", []any{"ann", 1.0})
		testutil.RequireScheduled(tb, rdb, "app", "Later", []any{map[string]any{"a": 2, "b": 1}}, now.Add(time.Hour), time.Millisecond)
		testutil.RequireScheduled(tb, rdb, "app", "Later", []any{map[string]any{"a": 2, "b": 1}}, time.Time{}, 0)
	}); msg != "" {
		t.Fatalf("assertions on pushed jobs failed: %s", msg)
	}

	failing := []struct {
		name string
		f    func(tb testing.TB)
		want string
	}{
		{"wrong args", func(tb testing.TB) {
			testutil.RequireEnqueued(tb, rdb, "app", "default", "HardWorker", []any{"bob", 6})
		}, "no HardWorker job with args [\"bob\",6]"},
		{"integer is not float", func(tb testing.TB) {
			testutil.RequireEnqueued(tb, rdb, "app", "low", "HardWorker", []any{"ann", 1})
		}, "it holds:"},
		{"wrong queue", func(tb testing.TB) {
			testutil.RequireEnqueued(tb, rdb, "app", "low", "HardWorker", []any{"bob", 5})
		}, `in queue "low"`},
		{"wrong namespace", func(tb testing.TB) {
			testutil.RequireEnqueued(tb, rdb, "", "default", "HardWorker", []any{"bob", 5})
		}, "(nothing)"},
		{"scheduled at another time", func(tb testing.TB) {
			testutil.RequireScheduled(tb, rdb, "app", "Later", []any{map[string]any{"a": 2, "b": 1}}, now, time.Minute)
		}, "RequireScheduled: no Later job"},
	}
	for _, c := range failing {
		if msg := fails(t, c.f); !strings.Contains(msg, c.want) {
			t.Errorf("%s: failure message %q, want it to contain %q", c.name, msg, c.want)
		}
	}
}
