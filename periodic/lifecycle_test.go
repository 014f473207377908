package periodic_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestLifecycle: Stop before Start does nothing; a second Start, or Run while started, is
// an error; a job added while the scheduler runs is written to Redis and enqueued without
// waiting for a refresh; Stop returns once the loop has ended, and Start works again.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	sched := periodic.New(rdb, sidekiq.NewClient(rdb, nil), &periodic.Config{RefreshInterval: time.Hour})
	if err := sched.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := sched.Run(ctx); err == nil {
		t.Fatal("Run while started succeeded")
	}
	if err := sched.Add(periodic.Job{Name: "late", Spec: "@every 1s", Class: "LateJob"}); err != nil {
		t.Fatal(err)
	}
	err := sched.Add(periodic.Job{Name: "late", Spec: "@every 2s", Class: "LateJob"})
	if !errors.Is(err, periodic.ErrDuplicateJob) || !errors.Is(err, periodic.ErrInvalidJob) {
		t.Fatalf("duplicate Add: %v", err)
	}
	testutil.Eventually(t, 20*time.Second, "the added job enqueued", func() bool {
		return rdb.LLen(ctx, "queue:default").Val() >= 1
	})
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sched.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := sched.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
}

// TestAddRefuses: Add refuses a job it cannot schedule, naming the job and the problem.
func TestAddRefuses(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	sched := periodic.New(rdb, sidekiq.NewClient(rdb, nil), nil)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		job  periodic.Job
		want string
		spec bool
	}{
		{"bad spec", periodic.Job{Name: "a", Spec: "0 25 * * *", Class: "C"}, `periodic: job "a": bad spec "0 25 * * *": end of range (25) above maximum (23): 25`, true},
		{"no spec", periodic.Job{Name: "a", Class: "C"}, `bad spec "": empty`, true},
		{"sub-second every", periodic.Job{Name: "a", Spec: "@every 100ms", Class: "C"}, "under one second", true},
		{"no name", periodic.Job{Spec: "* * * * *", Class: "C"}, "Name is empty", false},
		{"no class", periodic.Job{Name: "a", Spec: "* * * * *"}, "Class is empty", false},
		{"bad queue", periodic.Job{Name: "a", Spec: "* * * * *", Class: "C", Queue: "a b"}, "whitespace", false},
		{"reserved extra", periodic.Job{Name: "a", Spec: "* * * * *", Class: "C", Extra: map[string]any{"jid": "x"}}, `"jid" has a field of its own`, false},
		{"bad args", periodic.Job{Name: "a", Spec: "* * * * *", Class: "C", Args: []any{make(chan int)}}, "Args", false},
		{"fixed zone", periodic.Job{Name: "a", Spec: "* * * * *", Class: "C", Location: time.FixedZone("X", 3600)}, "not a named zone", false},
		{"two zones", periodic.Job{Name: "a", Spec: "CRON_TZ=UTC * * * * *", Class: "C", Location: berlin}, "names zone UTC but Location is Europe/Berlin", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sched.Add(tt.job)
			if !errors.Is(err, periodic.ErrInvalidJob) || errors.Is(err, periodic.ErrBadSpec) != tt.spec {
				t.Fatalf("err = %v", err)
			}
			var je *periodic.JobError
			if !errors.As(err, &je) || je.Name != tt.job.Name {
				t.Fatalf("err = %#v", err)
			}
			if got := err.Error(); !strings.Contains(got, tt.want) {
				t.Fatalf("err = %q, want it to say %q", got, tt.want)
			}
		})
	}
}
