package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestLoadConfig: the documented defaults, FERRY_QUEUES in -q notation separated by ";"
// or spaces, the queue modes, and clear errors for the likely mistakes.
func TestLoadConfig(t *testing.T) {
	url, cfg, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if url != defaultRedisURL || strings.Join(cfg.Queues, " ") != "default" || cfg.Concurrency != 10 ||
		cfg.ShutdownTimeout != 25*time.Second || cfg.Namespace != "" || cfg.QueueMode != sidekiq.QueueModeAuto {
		t.Errorf("defaults: url %q, cfg %+v", url, cfg)
	}

	url, cfg, err = loadConfig(env(map[string]string{
		"REDIS_URL":              "redis://redis:6379/3",
		"FERRY_QUEUES":           " critical,6; default,2 low ",
		"FERRY_QUEUE_MODE":       "Ranked",
		"FERRY_CONCURRENCY":      "25",
		"FERRY_NAMESPACE":        "myapp",
		"FERRY_SHUTDOWN_TIMEOUT": "8s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if url != "redis://redis:6379/3" || strings.Join(cfg.Queues, " ") != "critical,6 default,2 low" ||
		cfg.QueueMode != sidekiq.QueueModeRanked || cfg.Concurrency != 25 || cfg.Namespace != "myapp" ||
		cfg.ShutdownTimeout != 8*time.Second {
		t.Errorf("set: url %q, cfg %+v", url, cfg)
	}

	for _, tc := range []struct{ key, value, want string }{
		{"FERRY_QUEUES", "critical,default", `"default" is not a weight; separate queues with ";"`},
		{"FERRY_QUEUES", ",3", "empty queue name"},
		{"FERRY_QUEUE_MODE", "fifo", "want auto, strict, weighted or ranked"},
		{"FERRY_CONCURRENCY", "0", "want a positive integer"},
		{"FERRY_CONCURRENCY", "ten", "want a positive integer"},
		{"FERRY_SHUTDOWN_TIMEOUT", "25", "want a positive duration"},
	} {
		_, _, err := loadConfig(env(map[string]string{tc.key: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: error %v, want one containing %q", tc.key, tc.value, err, tc.want)
		}
	}
}

// TestSidecarRunsJobs runs the sidecar on an embedded Redis with the queues of the package
// documentation: a HardWorker job pushed as Rails would push it is run and logged, a job of
// a class with no Go handler goes to the retry set as Ferry::NoHandler, and cancelling the
// context stops the sidecar cleanly.
func TestSidecarRunsJobs(t *testing.T) {
	rdb, mr := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	c := sidekiq.NewClient(rdb, nil)
	if _, err := c.Push(ctx, "HardWorker", []any{"bob", 5}, sidekiq.Queue("go_default")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "RubyOnlyWorker", nil, sidekiq.Queue("go_critical")); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(rctx, env(map[string]string{
			"REDIS_URL":              "redis://" + mr.Addr(),
			"FERRY_QUEUES":           "go_critical,6;go_default,2",
			"FERRY_CONCURRENCY":      "2",
			"FERRY_SHUTDOWN_TIMEOUT": "2s",
		}), zap.New(core))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage("HardWorker").Len() == 0 || rdb.ZCard(ctx, "retry").Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("jobs not handled in time; logs: %v", logs.All())
		}
		time.Sleep(5 * time.Millisecond)
	}
	args := logs.FilterMessage("HardWorker").All()[0].ContextMap()["args"]
	if b, _ := json.Marshal(args); string(b) != `["bob",5]` {
		t.Errorf("HardWorker logged args %s, want [\"bob\",5]", b)
	}
	entry := rdb.ZRange(ctx, "retry", 0, -1).Val()[0]
	if !strings.Contains(entry, `"error_class":"Ferry::NoHandler"`) || !strings.Contains(entry, `"class":"RubyOnlyWorker"`) {
		t.Errorf("retry entry %s, want RubyOnlyWorker failed with Ferry::NoHandler", entry)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sidecar did not stop after its context ended")
	}
}

// TestSidecarServesMetricsAndHealth: with FERRY_HTTP_ADDR set, /healthz answers while the
// process runs, /readyz once the server is registered and no longer once it is quiet,
// and /metrics has the job counters of the jobs it ran and the shared Sidekiq figures.
func TestSidecarServesMetricsAndHealth(t *testing.T) {
	rdb, mr := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	core, logs := observer.New(zapcore.InfoLevel)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(rctx, env(map[string]string{
			"REDIS_URL":              "redis://" + mr.Addr(),
			"FERRY_QUEUES":           "go_default",
			"FERRY_CONCURRENCY":      "2",
			"FERRY_SHUTDOWN_TIMEOUT": "2s",
			"FERRY_HTTP_ADDR":        "127.0.0.1:0",
		}), zap.New(core))
	}()
	var base string
	testutil.Eventually(t, 10*time.Second, "the http listener", func() bool {
		if l := logs.FilterMessage("http listening").All(); len(l) > 0 {
			base = "http://" + l[0].ContextMap()["addr"].(string)
			return true
		}
		return false
	})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testutil.Eventually(t, 10*time.Second, "/readyz to answer 200", func() bool {
		code, _ := get("/readyz")
		return code == http.StatusOK
	})
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}

	c := sidekiq.NewClient(rdb, nil)
	if _, err := c.Push(ctx, "HardWorker", []any{"bob", 5}, sidekiq.Queue("go_default")); err != nil {
		t.Fatal(err)
	}
	const processed = `ferry_jobs_processed_total{class="HardWorker",queue="go_default"} 1`
	// The shared figures are refreshed every 5 s; one refresh may come before the job ran
	// (or time out on a loaded machine), so wait for one that saw it.
	var body string
	testutil.Eventually(t, 30*time.Second, "the job and the shared figures in /metrics", func() bool {
		_, body = get("/metrics")
		return strings.Contains(body, processed) && strings.Contains(body, `ferry_sidekiq_up 1`) &&
			strings.Contains(body, `ferry_sidekiq_queue_size{queue="go_default"} 0`)
	})
	for _, want := range []string{
		`ferry_job_duration_seconds_count{class="HardWorker",queue="go_default"} 1`,
		`ferry_busy_workers{queue="go_default"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Quiet it as the Web UI's Quiet button does: not ready, still alive.
	identity := logs.FilterMessage("ferry server started").All()[0].ContextMap()["identity"].(string)
	if err := rdb.LPush(ctx, identity+"-signals", "TSTP").Err(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "/readyz to answer 503 once quiet", func() bool {
		code, _ := get("/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while quiet: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sidecar did not stop")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the http server still answers after the sidecar stopped")
	}
}
