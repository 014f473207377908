package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestPsQuietStopRubyAndGo runs a Ruby Sidekiq process and a Ferry server on one Redis:
// ps lists both, quiet and stop reach each through its signals list.
func TestPsQuietStopRubyAndGo(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	ctx := context.Background()

	rb := testsuite.StartSidekiq(t, db.URL, `class SlowJob; include Sidekiq::Worker; def perform; sleep 30; end; end`,
		"-q", "ruby", "-c", "2", "-g", "rubytag")
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency: 3, Queues: []string{"go"}, HeartbeatInterval: 100 * time.Millisecond, Tag: "gotag",
		Logger: zap.NewNop(), ShutdownTimeout: time.Second,
	})
	srv.Handle("GoJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return nil }))
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })

	sk := api.New(db.Client, nil)
	var rubyID string
	testutil.Eventually(t, 30*time.Second, "both processes in the processes set", func() bool {
		procs, err := sk.Processes(ctx)
		if err != nil || len(procs) != 2 {
			return false
		}
		for _, p := range procs {
			if p.Identity != srv.Identity() {
				rubyID = p.Identity
			}
		}
		return true
	})

	var ps []processJSON
	r := must(t, exitOK, db.URL, runOpts{}, "ps", "--json", "--jobs")
	if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil || len(ps) != 2 {
		t.Fatalf("ps --json: %v %s", err, r.stdout)
	}
	byID := map[string]processJSON{}
	for _, p := range ps {
		byID[p.Identity] = p
	}
	if p := byID[rubyID]; p.Runtime != "ruby" || p.Tag != "rubytag" || p.Concurrency != 2 || strings.Join(p.Queues, ",") != "ruby" || p.Quiet {
		t.Fatalf("Ruby process %+v", p)
	}
	if p := byID[srv.Identity()]; p.Runtime != "go" || p.Tag != "gotag" || p.Concurrency != 3 || strings.Join(p.Queues, ",") != "go" {
		t.Fatalf("Go process %+v", p)
	}
	r = must(t, exitOK, db.URL, runOpts{}, "ps")
	contains(t, "ps", r.stdout, "IDENTITY", "RUNTIME", rubyID, srv.Identity(), "ruby", "go", "0/2", "0/3", "running", "2 processes")

	// quiet the Go server, stop the Ruby process.
	r = must(t, exitOK, db.URL, runOpts{}, "quiet", srv.Identity())
	contains(t, "quiet", r.stdout, "Sent TSTP (quiet) to "+srv.Identity())
	testutil.Eventually(t, 30*time.Second, "the Go server quiet", func() bool { return !srv.Ready() })
	testutil.Eventually(t, 30*time.Second, "ps showing the Go server quiet", func() bool {
		p, err := sk.Process(ctx, srv.Identity())
		return err == nil && p.Quiet
	})
	r = must(t, exitOK, db.URL, runOpts{}, "stop", rubyID, "--json")
	var sj signalJSON
	if err := json.Unmarshal([]byte(r.stdout), &sj); err != nil || sj.Signal != "TERM" || len(sj.Sent) != 1 || sj.Sent[0] != rubyID {
		t.Fatalf("stop --json: %v %s", err, r.stdout)
	}
	select {
	case <-rb.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the Ruby process did not stop within 60 s of `ferry stop`")
	}
	r = must(t, exitNotFound, db.URL, runOpts{}, "quiet", "nohost:1:nothing")
	contains(t, "quiet unknown", r.stderr, "no such live process: nohost:1:nothing")

	r = must(t, exitOK, db.URL, runOpts{}, "stop", "--all", "--yes")
	contains(t, "stop --all", r.stdout, "Sent TERM (stop) to "+srv.Identity())
	select {
	case <-srv.StopRequested():
	case <-time.After(30 * time.Second):
		t.Fatal("the Go server saw no stop request")
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	rdb, mr := testutil.NewEmbeddedRedis(t)
	url := "redis://" + mr.Addr()
	ctx := context.Background()
	if err := rdb.SAdd(ctx, "queues", "default").Err(); err != nil {
		t.Fatal(err)
	}
	r := must(t, exitOK, url, runOpts{}, "watch", "--count", "2", "--interval", "100ms")
	if n := strings.Count(r.stdout, "ferry watch  redis://"); n != 2 {
		t.Fatalf("%d views, want 2:\n%s", n, r.stdout)
	}
	if strings.Contains(r.stdout, clearScreen) {
		t.Fatal("redrew the screen on a non-terminal")
	}
	contains(t, "watch", r.stdout, "Processed 0", "QUEUE", "default", "PROCESS")
	r = must(t, exitOK, url, runOpts{}, "watch", "--count", "3", "--interval", "100ms", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d JSON views, want 3: %s", len(lines), r.stdout)
	}
	for _, l := range lines {
		var v watchJSON
		if err := json.Unmarshal([]byte(l), &v); err != nil || len(v.Queues) != 1 {
			t.Fatalf("view %q: %v", l, err)
		}
	}
	// Ctrl-C ends the view with success.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan int)
	a := &app{stdin: strings.NewReader(""), stdout: &testsuite.SyncBuffer{}, stderr: &testsuite.SyncBuffer{},
		getenv:        func(k string) string { return map[string]string{"REDIS_URL": url}[k] },
		stdinTerminal: func() bool { return false }, stdoutTerminal: func() bool { return true }}
	go func() { done <- run(cctx, a, []string{"watch", "--interval", "100ms"}) }()
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("interrupted watch exited %d", code)
	}
}
