package sidekiq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/internal/faultproxy"
	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// Regression tests for what a hostile payload, an oversized job or a hung Redis could do
// (issue 14). Memory is measured in a child process, testdata/memchild built without the
// race detector (which would multiply its memory), whose peak RSS (VmHWM) is its own.

// hardeningSpec configures a memchild process.
type hardeningSpec struct {
	URL  string
	Mode string // "drain": run Jobs jobs and exit; "hold": run one job until released
	Jobs int
	// HeartbeatInterval, when set, overrides the default.
	HeartbeatInterval time.Duration
}

var (
	memchildOnce sync.Once
	memchildPath string
	memchildErr  error
)

// buildMemchild builds testdata/memchild once per test binary.
func buildMemchild(t *testing.T) string {
	t.Helper()
	memchildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-memchild")
		if err != nil {
			memchildErr = err
			return
		}
		memchildPath = filepath.Join(dir, "memchild")
		out, err := exec.Command("go", "build", "-o", memchildPath, "./testdata/memchild").CombinedOutput()
		if err != nil {
			memchildErr = fmt.Errorf("go build ./testdata/memchild: %v\n%s", err, out)
		}
	})
	if memchildErr != nil {
		t.Fatal(memchildErr)
	}
	return memchildPath
}

// runHardeningChild runs the child to its end and returns its "stranded" and "vmhwm_kb"
// figures.
func runHardeningChild(t *testing.T, spec hardeningSpec) (stranded, hwmKB int64) {
	t.Helper()
	raw, _ := json.Marshal(spec)
	cmd := exec.Command(buildMemchild(t))
	cmd.Env = append(os.Environ(), "FERRY_MEMCHILD="+string(raw))
	out := &testsuite.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child failed: %v\n%s", err, out.String())
	}
	stranded, hwmKB = -1, -1
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "log: ") {
			t.Log(line)
		}
		if v, ok := strings.CutPrefix(line, "stranded "); ok {
			stranded, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "vmhwm_kb "); ok {
			hwmKB, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if stranded < 0 || hwmKB <= 0 {
		t.Fatalf("child printed no figures:\n%s", out.String())
	}
	return stranded, hwmKB
}

// bigPayload returns a job payload of about size bytes.
func bigPayload(jid string, size int) string {
	return `{"class":"Big","queue":"default","jid":"` + jid + `","retry":true,"created_at":1795352598.5,"enqueued_at":1795352598.5,"args":["` +
		strings.Repeat("x", size) + `"]}`
}

// TestLargePayloadsDrainInBoundedMemory: jobs of 1 MB each, read over a link of about
// 30 MB/s, drain at default settings with every job run once, no job left stranded by a
// lost fetch reply, and a peak RSS under 200 MB. Before fetches were bounded by bytes, one
// fetch returned ~110 MB, outlived go-redis's read timeout and was silently re-sent,
// stranding the jobs it had moved until the reconciler found them. (BENCHMARKS.md has the
// 1,000-job figures; 200 keep this test short.)
func TestLargePayloadsDrainInBoundedMemory(t *testing.T) {
	// A Redis of its own: a few hundred megabytes through the shared one would slow every
	// other test running beside this one.
	rs := redisproc.Start(t, "--appendonly", "no")
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	const jobs, size = 200, 1 << 20
	for start := 0; start < jobs; start += 10 {
		batch := make([]any, 0, 10)
		for i := start; i < start+10; i++ {
			batch = append(batch, bigPayload(fmt.Sprintf("big%05d", i), size))
		}
		if err := rdb.LPush(ctx, "queue:default", batch...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	proxy, err := faultproxy.Start(rs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.SetBandwidth(30 << 20) // a slow link: a 110 MB reply takes longer than the 3 s read timeout
	url := "redis://" + proxy.Addr() + "/0"
	stranded, hwm := runHardeningChild(t, hardeningSpec{URL: url, Mode: "drain", Jobs: jobs})
	t.Logf("peak RSS %d MB, stranded-job log lines %d", hwm/1024, stranded)
	if stranded != 0 {
		t.Errorf("%d jobs were stranded in the in-progress list", stranded)
	}
	if hwm > 200*1024 {
		t.Errorf("peak RSS %d MB, want under 200 MB", hwm/1024)
	}
	done, err := rdb.LRange(ctx, "hardening:done", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, jid := range done {
		seen[jid]++
	}
	if len(seen) != jobs {
		t.Errorf("%d distinct jobs ran, want %d", len(seen), jobs)
	}
	for jid, n := range seen {
		if n > 1 {
			t.Errorf("job %s ran %d times", jid, n)
		}
	}
	if n := rdb.LLen(ctx, "queue:default").Val(); n != 0 {
		t.Errorf("%d jobs left in the queue", n)
	}
}

// usedMemory is Redis's used_memory in bytes.
func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}

// TestRunningLargeJobIsNotCopiedEachBeat: a 50 MB job running through many heartbeats adds
// less than half its size to Redis's memory beyond its one copy in the in-progress list,
// and the worker's peak RSS stays under 250 MB. Before, every beat re-encoded the payload
// into both running-job hashes.
func TestRunningLargeJobIsNotCopiedEachBeat(t *testing.T) {
	srv := redisproc.Start(t, "--appendonly", "no")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	const size = 50 << 20
	base := usedMemory(t, rdb)
	if err := rdb.LPush(ctx, "queue:default", bigPayload("bigone", size)).Err(); err != nil {
		t.Fatal(err)
	}

	type figures struct{ stranded, hwm int64 }
	res := make(chan figures, 1)
	go func() {
		s, h := runHardeningChild(t, hardeningSpec{URL: srv.URL(), Mode: "hold", Jobs: 1, HeartbeatInterval: 100 * time.Millisecond})
		res <- figures{s, h}
	}()
	testutil.Eventually(t, 3*time.Minute, "the job to start", func() bool {
		return rdb.Exists(ctx, "hardening:running").Val() == 1
	})
	// Let many beats pass while the job runs: the process record's beat moves each time.
	beats := 0
	var lastBeat string
	var peak int64
	testutil.Eventually(t, 3*time.Minute, "20 heartbeats", func() bool {
		ids := rdb.SMembers(ctx, "processes").Val()
		if len(ids) == 1 {
			if b := rdb.HGet(ctx, ids[0], "beat").Val(); b != lastBeat {
				lastBeat = b
				beats++
			}
		}
		peak = max(peak, usedMemory(t, rdb))
		return beats >= 20
	})
	if err := rdb.LPush(ctx, "hardening:release", "go").Err(); err != nil {
		t.Fatal(err)
	}
	f := <-res
	extra := peak - base - size // beyond the job's one copy (in the queue, then in flight)
	t.Logf("Redis: base %d MB, peak while running %d MB (+%d MB beyond the job's own copy); worker peak RSS %d MB",
		base>>20, peak>>20, extra>>20, f.hwm/1024)
	if extra > size/2 {
		t.Errorf("running the job added %d MB to Redis beyond its queued copy, want under %d MB", extra>>20, size>>21)
	}
	if f.hwm > 250*1024 {
		t.Errorf("worker peak RSS %d MB, want under 250 MB", f.hwm/1024)
	}
}

// TestHugeRetryCountSchedulesInTheFuture: a job that allows many retries and has failed
// hundreds of times is retried later, never at a time in the past (Sidekiq's count⁴
// overflowed a Duration from count 310 on, and the job looped).
func TestHugeRetryCountSchedulesInTheFuture(t *testing.T) {
	t.Parallel()
	for _, count := range []int{309, 310, 500, 1999, 100000, -400} {
		d := sidekiq.DefaultRetryDelay(count, nil, nil)
		if d < 15*time.Second {
			t.Errorf("DefaultRetryDelay(%d) = %v, want at least 15 s", count, d)
		}
	}
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	clock := testutil.NewFakeClock(t0)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Clock: clock})
	srv.Handle("Flaky", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return fmt.Errorf("boom") }))
	payload := `{"class":"Flaky","jid":"j1","args":[],"queue":"default","retry":100000,"retry_count":400,"failed_at":1795352598.5}`
	if err := rdb.LPush(ctx, "queue:default", payload).Err(); err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	waitFor(t, "the retry entry", func() bool { return zcard(t, rdb, "retry") == 1 })
	z := rdb.ZRangeWithScores(ctx, "retry", 0, -1).Val()
	at := time.Unix(0, int64(z[0].Score*1e9))
	if !at.After(t0.Add(time.Hour)) {
		t.Fatalf("retry 401 scheduled at %v, want far after %v", at, t0)
	}
}

// TestStopKeepsItsDeadlineWhenRedisHangs: with Redis stopped (SIGSTOP), Stop returns by its
// context's deadline plus a small constant, and the running job stays where recovery
// finds it. Before, Stop waited out read timeouts and retries (20 s for a 5 s context).
func TestStopKeepsItsDeadlineWhenRedisHangs(t *testing.T) {
	rs := redisproc.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2})
	running := make(chan struct{}, 1)
	srv.Handle("Slow", sidekiq.HandlerFunc(func(ctx context.Context, _ *sidekiq.Job) error {
		running <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}))
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sidekiq.NewClient(rdb, nil).Push(ctx, "Slow", nil); err != nil {
		t.Fatal(err)
	}
	<-running
	pid := rs.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	const deadline = 2 * time.Second
	const slack = 5 * time.Second // the 3 s grace cancelled handlers get, and scheduling
	sctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	began := time.Now()
	_ = srv.Stop(sctx)
	took := time.Since(began)
	t.Logf("Stop took %v with Redis stopped", took)
	if took > deadline+slack {
		t.Errorf("Stop took %v, want at most %v", took, deadline+slack)
	}
	resume()
	// The job is still in Redis: in the queue or in the in-progress list a recoverer reads.
	testutil.Eventually(t, 30*time.Second, "the job back in Redis", func() bool {
		n := rdb.LLen(ctx, "queue:default").Val()
		for _, key := range rdb.HKeys(ctx, "ferry:inflight").Val() {
			n += rdb.HLen(ctx, key).Val()
		}
		return n == 1
	})
}

// TestInvalidPayloadFloodLogsBounded: a flood of bad payloads does not give one log line
// each, and every one still ends in the dead set.
func TestInvalidPayloadFloodLogsBounded(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	const n = 2000
	bad := make([]any, n)
	for i := range bad {
		bad[i] = fmt.Sprintf(`{"class":%d}`, i)
	}
	if err := rdb.LPush(ctx, "queue:default", bad...).Err(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Logger: zap.New(core)})
	startServer(t, srv)
	waitFor(t, "every bad payload in the dead set", func() bool { return zcard(t, rdb, "dead") == n })
	lines := logs.FilterMessageSnippet("invalid job payload").Len()
	t.Logf("%d log lines for %d invalid payloads", lines, n)
	if lines > n/10 {
		t.Errorf("%d log lines for %d invalid payloads, want them sampled (at most %d)", lines, n, n/10)
	}
}

// TestHugeClassNameLogLinesBounded: a 1 MB class name does not make megabyte log lines.
func TestHugeClassNameLogLinesBounded(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	class := strings.Repeat("C", 1<<20)
	if _, err := sidekiq.NewClient(rdb, nil).Push(ctx, class, []any{1}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Logger: zap.New(core)})
	startServer(t, srv)
	waitFor(t, "the retry entry", func() bool { return zcard(t, rdb, "retry") == 1 })
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		if buf.Len() > 8<<10 {
			t.Errorf("log line %q is %d bytes", e.Message, buf.Len())
		}
		buf.Free()
	}
}
