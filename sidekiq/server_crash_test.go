package sidekiq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// Crash and shutdown tests with a worker in another OS process: the test binary re-runs
// itself as TestHelperProcessWorker with crashHelperEnv set, and that test runs a Server
// with sidekiq.RunWithSignals, so SIGKILL and SIGTERM hit a real process.
//
// Every handler run writes the job's jid to Redis twice, with RPUSH from inside the
// handler: to crashtest:started:<tag> when it begins and to crashtest:done:<tag> when it
// has finished its work (just before returning nil). <tag> names the process. "No job
// lost" is always shown the same way: every jid the test pushed is found in the union of
// the done lists, and at the end the queues, the in-progress lists, the retry and dead sets
// are empty. "Nothing run twice" is: no jid appears twice in that union.

const crashHelperEnv = "FERRY_CRASH_HELPER_WORKER"

// crashWorkerSpec configures a helper worker process (passed as JSON in crashHelperEnv).
type crashWorkerSpec struct {
	URL             string
	Tag             string
	Queues          []string
	Concurrency     int
	Prefetch        int
	Sleep           time.Duration // how long a CrashJob works
	ShutdownTimeout time.Duration
	ProcessTTL      time.Duration
	RecoverInterval time.Duration
}

func crashKey(kind, tag string) string { return "crashtest:" + kind + ":" + tag }

// crashHandler records the run in Redis and works for sleep (CrashJob), or until its
// context is cancelled (BlockJob, when block is set). A cancelled run returns ctx.Err()
// without recording "done", as a well-behaved handler does.
func crashHandler(rdb redis.UniversalClient, tag string, sleep time.Duration, block bool) sidekiq.Handler {
	return sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		bg := context.WithoutCancel(ctx)
		if err := rdb.RPush(bg, crashKey("started", tag), job.JID).Err(); err != nil {
			return err
		}
		d := sleep
		if block && job.Class == "BlockJob" {
			d = time.Hour
		}
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		return rdb.RPush(bg, crashKey("done", tag), job.JID).Err()
	})
}

func crashServerConfig(spec crashWorkerSpec, logger *zap.Logger) *sidekiq.Config {
	return &sidekiq.Config{
		Queues:          spec.Queues,
		Concurrency:     spec.Concurrency,
		Prefetch:        spec.Prefetch,
		ShutdownTimeout: spec.ShutdownTimeout,
		ProcessTTL:      spec.ProcessTTL,
		RecoverInterval: spec.RecoverInterval,
		Logger:          logger,
	}
}

// TestHelperProcessWorker is not a test: it is the body of the worker process the crash
// tests start (see startCrashWorker). Run directly, it skips.
func TestHelperProcessWorker(t *testing.T) {
	raw := os.Getenv(crashHelperEnv)
	if raw == "" {
		t.Skip("helper process of the crash tests; it runs only as their child")
	}
	var spec crashWorkerSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatalf("bad %s: %v", crashHelperEnv, err)
	}
	opts, err := redis.ParseURL(spec.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	logger, err := zap.NewDevelopment()
	if err != nil {
		t.Fatal(err)
	}
	srv := sidekiq.NewServer(rdb, crashServerConfig(spec, logger))
	h := crashHandler(rdb, spec.Tag, spec.Sleep, true)
	srv.Handle("CrashJob", h)
	srv.Handle("BlockJob", h)
	ctx := context.Background()
	if err := rdb.Set(ctx, crashKey("identity", spec.Tag), srv.Identity(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := sidekiq.RunWithSignals(ctx, srv); err != nil {
		t.Fatalf("RunWithSignals: %v", err)
	}
}

// crashChild is a running helper worker process.
type crashChild struct {
	cmd  *exec.Cmd
	out  *testsuite.SyncBuffer
	done chan struct{}
	err  error // Wait's result, valid once done is closed
}

// startCrashWorker re-runs the test binary as a worker process. The process is killed (if
// still running) when the test ends; its output is logged if the test failed.
func startCrashWorker(t *testing.T, spec crashWorkerSpec) *crashChild {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessWorker$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+string(raw))
	c := &crashChild{cmd: cmd, out: &testsuite.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the worker process: %v", err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("worker process %s output:\n%s", spec.Tag, c.out.String())
		}
	})
	return c
}

// signal sends sig to the worker process.
func (c *crashChild) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling the worker process: %v", err)
	}
}

// wait waits for the process to exit, failing the test after d.
func (c *crashChild) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		t.Fatalf("worker process still running after %v", d)
	}
}

func crashPush(t *testing.T, c *sidekiq.Client, class, queue string, n int) []string {
	t.Helper()
	args := make([][]any, n)
	for i := range args {
		args[i] = []any{i}
	}
	jids, err := c.PushBulk(context.Background(), class, args, sidekiq.Queue(queue))
	if err != nil {
		t.Fatal(err)
	}
	return jids
}

func crashList(t *testing.T, rdb redis.UniversalClient, key string) []string {
	t.Helper()
	v, err := rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// crashRuns counts the finished runs of each jid over the done lists of the given tags.
func crashRuns(t *testing.T, rdb redis.UniversalClient, tags ...string) map[string]int {
	t.Helper()
	runs := map[string]int{}
	for _, tag := range tags {
		for _, jid := range crashList(t, rdb, crashKey("done", tag)) {
			runs[jid]++
		}
	}
	return runs
}

// crashLen is the number of finished runs recorded by the given tags (repeats included).
func crashLen(rdb redis.UniversalClient, tags ...string) int {
	total := 0
	for _, tag := range tags {
		total += int(rdb.LLen(context.Background(), crashKey("done", tag)).Val())
	}
	return total
}

// crashCheckAllRun fails unless every jid ran at least once and no other jid ran; it
// returns how many runs were repeats.
func crashCheckAllRun(t *testing.T, jids []string, runs map[string]int) (dups int) {
	t.Helper()
	missing := 0
	for _, jid := range jids {
		if runs[jid] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d jobs never finished: lost", missing, len(jids))
	}
	if len(runs) != len(jids)-missing {
		t.Errorf("runs recorded for %d distinct jids, %d pushed", len(runs), len(jids))
	}
	for _, n := range runs {
		dups += n - 1
	}
	return dups
}

// crashCheckClean fails unless nothing is left anywhere a job could wait or hide: queues,
// in-progress lists and their index, retry and dead sets.
func crashCheckClean(t *testing.T, rdb redis.UniversalClient, queues ...string) {
	t.Helper()
	ctx := context.Background()
	for _, q := range queues {
		if n := rdb.LLen(ctx, "queue:"+q).Val(); n != 0 {
			t.Errorf("queue:%s still has %d jobs", q, n)
		}
	}
	if keys := rdb.Keys(ctx, "ferry:inflight*").Val(); len(keys) != 0 {
		t.Errorf("in-progress keys left: %v", keys)
	}
	for _, set := range []string{"retry", "dead", "schedule"} {
		if n := rdb.ZCard(ctx, set).Val(); n != 0 {
			t.Errorf("%s set has %d jobs", set, n)
		}
	}
}

func crashWaitLen(t *testing.T, rdb redis.UniversalClient, d time.Duration, what string, n int64, keys ...string) {
	t.Helper()
	qtWait(t, d, what, func() bool {
		var total int64
		for _, k := range keys {
			total += rdb.LLen(context.Background(), k).Val()
		}
		return total >= n
	})
}

// TestCrashSIGKILLRecoversEveryJob: a worker process ("victim") is killed with SIGKILL
// while it runs jobs; an in-process server ("survivor") working the same queue recovers
// the victim's in-progress jobs once the victim's process record expires (ProcessTTL 2 s
// on both, RecoverInterval 250 ms), and every one of 2,000 jobs completes.
//
// No job lost: every pushed jid is in the victim's or the survivor's done list, and queue,
// in-progress lists, retry and dead sets end empty. Duplicates are bounded exactly: after
// the kill the victim's in-progress list is frozen; its length is the number of jobs in
// flight at the kill (running, prefetched, or finished but not yet acknowledged), the
// survivor must report recovering exactly that many, at least one, and the number of
// repeated runs must not exceed it. Both processes run recoverers while both are alive, so
// jobs a recoverer took from a live process would also show up as excess repeats (see
// TestCrashRecovererLeavesLiveProcessAlone for that case on its own).
func TestCrashSIGKILLRecoversEveryJob(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const n = 2000
	const queue = "crash"
	jids := crashPush(t, sidekiq.NewClient(db.Client, nil), "CrashJob", queue, n)
	spec := crashWorkerSpec{
		URL:             db.URL,
		Tag:             "victim",
		Queues:          []string{queue},
		Concurrency:     8,
		Sleep:           5 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
		ProcessTTL:      2 * time.Second,
		RecoverInterval: 250 * time.Millisecond,
	}
	victim := startCrashWorker(t, spec)
	crashWaitLen(t, db.Client, 30*time.Second, "the victim to run jobs", 100, crashKey("done", "victim"))

	core, logs := observer.New(zapcore.InfoLevel)
	survSpec := spec
	survSpec.Tag = "survivor"
	survivor := sidekiq.NewServer(db.Client, crashServerConfig(survSpec, zap.New(core)))
	survivor.Handle("CrashJob", crashHandler(db.Client, "survivor", spec.Sleep, false))
	qtStart(t, survivor)
	crashWaitLen(t, db.Client, 30*time.Second, "both processes to run jobs", 600,
		crashKey("done", "victim"), crashKey("done", "survivor"))

	identity := db.Client.Get(ctx, crashKey("identity", "victim")).Val()
	inflight := "ferry:inflight:" + identity
	victim.signal(t, syscall.SIGKILL)
	victim.wait(t, 10*time.Second)
	frozen := db.Client.HLen(ctx, inflight).Val()
	doneAtKill := db.Client.LLen(ctx, crashKey("done", "victim")).Val()
	if doneAtKill >= n {
		t.Fatalf("the victim finished all %d jobs before the kill; nothing was in flight", n)
	}

	// Recovery: the victim's list leaves the index once the survivor has returned its jobs,
	// and the survivor logs how many just after; wait for both (the log line comes a moment
	// after the script, so reading it as soon as the index changes would race).
	recoveredJobs := func() int {
		n := 0
		for _, e := range logs.FilterMessage("recovered jobs of a dead process").AllUntimed() {
			if e.ContextMap()["dead_identity"] == identity {
				n += int(e.ContextMap()["jobs"].(int64))
			}
		}
		return n
	}
	qtWait(t, 15*time.Second, "the survivor to recover the victim's jobs", func() bool {
		ok, err := db.Client.HExists(ctx, "ferry:inflight", inflight).Result()
		return err == nil && !ok && (frozen == 0 || recoveredJobs() > 0)
	})
	recovered := recoveredJobs()
	if recovered == 0 {
		t.Fatalf("the survivor recovered no job of the victim (frozen in-flight hash held %d)", frozen)
	}
	if frozen != 0 && int64(recovered) != frozen {
		t.Errorf("survivor recovered %d jobs; the victim's in-flight hash held %d at the kill", recovered, frozen)
	}

	qtWait(t, 30*time.Second, fmt.Sprintf("all %d jobs to finish", n), func() bool {
		return crashLen(db.Client, "victim", "survivor") >= n && len(crashRuns(t, db.Client, "victim", "survivor")) >= n
	})
	qtStop(t, survivor)
	dups := crashCheckAllRun(t, jids, crashRuns(t, db.Client, "victim", "survivor"))
	t.Logf("victim finished %d jobs before SIGKILL; %d in flight at the kill were recovered; %d ran twice",
		doneAtKill, recovered, dups)
	if dups > recovered {
		t.Errorf("%d repeated runs, but only %d jobs were in flight at the kill", dups, recovered)
	}
	crashCheckClean(t, db.Client, queue)
}

// TestCrashSIGTERMDrainsThenFreshWorkerFinishes: SIGTERM in the middle of a run stops the
// worker process gracefully (ShutdownTimeout 20 s, far longer than a 20 ms job): it stops
// fetching, lets every running job finish, pushes fetched-but-unstarted jobs back, leaves
// the process list and exits 0. A fresh worker then runs the rest.
//
// No job lost, nothing run twice: right after the exit, every job the process started it
// also finished (started list = done list, no duplicates), jobs finished after the signal
// (the in-flight ones ran to completion), its in-progress list is gone, and the queue
// holds exactly the n jobs it did not run. After the fresh worker, every jid is in exactly
// one done list, once, and everything is empty.
func TestCrashSIGTERMDrainsThenFreshWorkerFinishes(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const n = 600
	const queue = "graceful"
	jids := crashPush(t, sidekiq.NewClient(db.Client, nil), "CrashJob", queue, n)
	spec := crashWorkerSpec{
		URL:             db.URL,
		Tag:             "first",
		Queues:          []string{queue},
		Concurrency:     8,
		Sleep:           20 * time.Millisecond,
		ShutdownTimeout: 20 * time.Second,
		ProcessTTL:      2 * time.Second,
		RecoverInterval: 250 * time.Millisecond,
	}
	child := startCrashWorker(t, spec)
	crashWaitLen(t, db.Client, 30*time.Second, "the worker to run jobs", 50, crashKey("done", "first"))
	doneBefore := db.Client.LLen(ctx, crashKey("done", "first")).Val()
	child.signal(t, syscall.SIGTERM)
	child.wait(t, 15*time.Second)
	if child.err != nil {
		t.Fatalf("worker process exited with %v, want a clean exit", child.err)
	}

	identity := db.Client.Get(ctx, crashKey("identity", "first")).Val()
	started := crashList(t, db.Client, crashKey("started", "first"))
	done := crashList(t, db.Client, crashKey("done", "first"))
	if len(done) <= int(doneBefore) {
		t.Errorf("no job finished after SIGTERM (%d done before, %d after): running jobs were not drained", doneBefore, len(done))
	}
	if len(done) >= n {
		t.Fatalf("the worker ran all %d jobs before stopping; the test proves nothing", n)
	}
	doneSet := map[string]bool{}
	for _, jid := range done {
		if doneSet[jid] {
			t.Errorf("job %s ran twice in the first worker", jid)
		}
		doneSet[jid] = true
	}
	for _, jid := range started {
		if !doneSet[jid] {
			t.Errorf("job %s was started but not finished: the stop was not graceful", jid)
		}
	}
	if len(started) != len(done) {
		t.Errorf("%d jobs started, %d finished", len(started), len(done))
	}
	if got := db.Client.LLen(ctx, "queue:"+queue).Val(); got != int64(n-len(done)) {
		t.Errorf("queue holds %d jobs after the stop, want %d (pushed %d, ran %d)", got, n-len(done), n, len(done))
	}
	if db.Client.Exists(ctx, "ferry:inflight:"+identity).Val() != 0 {
		t.Error("the stopped worker's in-flight hash still exists")
	}
	if db.Client.SIsMember(ctx, "processes", identity).Val() {
		t.Error("the stopped worker is still in the processes set")
	}

	fresh := sidekiq.NewServer(db.Client, &sidekiq.Config{Queues: []string{queue}, Concurrency: 8})
	fresh.Handle("CrashJob", crashHandler(db.Client, "fresh", time.Millisecond, false))
	qtStart(t, fresh)
	qtWait(t, 30*time.Second, "the fresh worker to finish the rest", func() bool {
		return crashLen(db.Client, "first", "fresh") >= n && len(crashRuns(t, db.Client, "first", "fresh")) >= n
	})
	qtStop(t, fresh)
	if dups := crashCheckAllRun(t, jids, crashRuns(t, db.Client, "first", "fresh")); dups != 0 {
		t.Errorf("%d jobs ran twice after a graceful stop", dups)
	}
	crashCheckClean(t, db.Client, queue)
}

// TestCrashSIGTERMCancelsJobOutlivingShutdownTimeout: a job still running when the
// ShutdownTimeout (1 s) passes after SIGTERM has its context cancelled; the handler
// returns ctx.Err(), which is not a failure: the job goes back to the head of its queue
// (the end fetches take from) byte for byte, ahead of five jobs pushed after it, and the
// process exits 0 within the timeout plus the grace period. A fresh worker then runs it
// first.
//
// No job lost: after the exit the cancelled job is at the head of the queue with its
// original bytes and the queue holds all 6 jobs; the retry and dead sets are empty; after
// the fresh worker every jid is in a done list exactly once (the cancelled run never
// recorded "done").
func TestCrashSIGTERMCancelsJobOutlivingShutdownTimeout(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	const queue = "timeout"
	c := sidekiq.NewClient(db.Client, nil)
	blocked := crashPush(t, c, "BlockJob", queue, 1)[0]
	original := db.Client.LIndex(ctx, "queue:"+queue, 0).Val()
	spec := crashWorkerSpec{
		URL:             db.URL,
		Tag:             "stopping",
		Queues:          []string{queue},
		Concurrency:     1,
		Prefetch:        -1,
		ShutdownTimeout: time.Second,
		ProcessTTL:      2 * time.Second,
		RecoverInterval: 250 * time.Millisecond,
	}
	child := startCrashWorker(t, spec)
	crashWaitLen(t, db.Client, 30*time.Second, "the blocking job to start", 1, crashKey("started", "stopping"))
	later := crashPush(t, c, "CrashJob", queue, 5)
	if got := db.Client.LLen(ctx, "queue:"+queue).Val(); got != 5 {
		t.Fatalf("queue holds %d jobs while the worker is busy, want the 5 pushed later", got)
	}
	sent := time.Now()
	child.signal(t, syscall.SIGTERM)
	child.wait(t, 15*time.Second)
	took := time.Since(sent)
	if child.err != nil {
		t.Fatalf("worker process exited with %v, want a clean exit", child.err)
	}
	if took < spec.ShutdownTimeout {
		t.Errorf("worker exited %v after SIGTERM, before its ShutdownTimeout of %v", took, spec.ShutdownTimeout)
	}

	if got := crashList(t, db.Client, crashKey("done", "stopping")); len(got) != 0 {
		t.Errorf("the cancelled job recorded done: %v", got)
	}
	if got := db.Client.LLen(ctx, "queue:"+queue).Val(); got != 6 {
		t.Errorf("queue holds %d jobs after the stop, want 6", got)
	}
	head := db.Client.LIndex(ctx, "queue:"+queue, -1).Val()
	if head != original {
		t.Errorf("head of the queue is %s\nwant the cancelled job's original bytes %s", head, original)
	}
	for _, set := range []string{"retry", "dead"} {
		if n := db.Client.ZCard(ctx, set).Val(); n != 0 {
			t.Errorf("cancellation at shutdown put %d jobs in the %s set", n, set)
		}
	}

	fresh := sidekiq.NewServer(db.Client, &sidekiq.Config{Queues: []string{queue}, Concurrency: 1, Prefetch: -1})
	h := crashHandler(db.Client, "fresh", time.Millisecond, false)
	fresh.Handle("CrashJob", h)
	fresh.Handle("BlockJob", h)
	qtStart(t, fresh)
	crashWaitLen(t, db.Client, 15*time.Second, "the fresh worker to run all 6 jobs", 6, crashKey("done", "fresh"))
	qtStop(t, fresh)
	order := crashList(t, db.Client, crashKey("done", "fresh"))
	if order[0] != blocked {
		t.Errorf("fresh worker ran %s first, want the requeued job %s", order[0], blocked)
	}
	if dups := crashCheckAllRun(t, append([]string{blocked}, later...), crashRuns(t, db.Client, "stopping", "fresh")); dups != 0 {
		t.Errorf("%d jobs ran twice", dups)
	}
	crashCheckClean(t, db.Client, queue)
}

// TestCrashRecovererLeavesLiveProcessAlone: a process is dead only when its record has
// expired, so setting only ProcessTTL (2 s, as these tests do, below the default 5 s
// HeartbeatInterval) must not make a live process look dead between two heartbeats. Server
// A runs a 3 s job; server B, working the same queue with RecoverInterval 100 ms, must not
// recover it while A runs it. Shown by: the job started once (by A), finished once, and B
// logged no recovery.
func TestCrashRecovererLeavesLiveProcessAlone(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	const queue = "live"
	jid := crashPush(t, sidekiq.NewClient(db.Client, nil), "CrashJob", queue, 1)[0]
	cfg := func(logger *zap.Logger) *sidekiq.Config {
		return &sidekiq.Config{
			Queues:          []string{queue},
			Concurrency:     1,
			ProcessTTL:      2 * time.Second,
			RecoverInterval: 100 * time.Millisecond,
			Logger:          logger,
		}
	}
	a := sidekiq.NewServer(db.Client, cfg(nil))
	a.Handle("CrashJob", crashHandler(db.Client, "a", 3*time.Second, false))
	qtStart(t, a)
	crashWaitLen(t, db.Client, 10*time.Second, "A to start the job", 1, crashKey("started", "a"))
	core, logs := observer.New(zapcore.InfoLevel)
	b := sidekiq.NewServer(db.Client, cfg(zap.New(core)))
	b.Handle("CrashJob", crashHandler(db.Client, "b", 3*time.Second, false))
	qtStart(t, b)
	crashWaitLen(t, db.Client, 10*time.Second, "A to finish the job", 1, crashKey("done", "a"))
	if got := crashList(t, db.Client, crashKey("started", "b")); len(got) != 0 {
		t.Errorf("B started %v while A was alive and running it", got)
	}
	if n := logs.FilterMessage("recovered jobs of a dead process").Len(); n != 0 {
		t.Errorf("B recovered jobs of the live process A (%d log entries)", n)
	}
	qtStop(t, a)
	qtStop(t, b)
	if dups := crashCheckAllRun(t, []string{jid}, crashRuns(t, db.Client, "a", "b")); dups != 0 {
		t.Errorf("the job ran %d extra times", dups)
	}
	crashCheckClean(t, db.Client, queue)
}

// TestHeartbeatReindexesInProgressLists: when another process's recoverer has taken this
// one's lists out of the in-progress index (its heartbeat came late, so it looked dead),
// the next heartbeat puts them back. Without that, jobs fetched afterwards would be lost
// if the process then crashed: no recoverer would look at its lists.
func TestHeartbeatReindexesInflightHash(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1, Queues: []string{"reindex"}, HeartbeatInterval: 20 * time.Millisecond})
		startServer(t, srv)
		hash := "ferry:inflight:" + srv.Identity()
		waitFor(t, "the hash in the index", func() bool { return rdb.HExists(ctx, "ferry:inflight", hash).Val() })
		// What a recoverer does to a process it believes dead.
		rdb.Del(ctx, srv.Identity())
		rdb.HDel(ctx, "ferry:inflight", hash)
		waitFor(t, "the heartbeat to index the hash again", func() bool { return rdb.HExists(ctx, "ferry:inflight", hash).Val() })
	})
}
