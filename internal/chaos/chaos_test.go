package chaos

import (
	"context"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/faultproxy"
	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/internal/testsuite"
)

// Suite shape. The short form (the default, run by `make test`) injects faults for
// defaultDuration; CHAOS_DURATION sets the long form's.
const (
	defaultDuration = 40 * time.Second
	goWorkers       = 3
	goConcurrency   = 5
	drainDeadline   = 3 * time.Minute
)

// TestChaos runs the soak and chaos suite; see the package documentation.
func TestChaos(t *testing.T) {
	dur, seed := chaosSettings(t)
	t.Logf("seed %d (replay the fault schedule with CHAOS_SEED=%d), faults for %v", seed, seed, dur)
	testsuite.RequireRuby(t)
	began := time.Now()

	ledgerDB := testsuite.RealRedis(t)
	ledger := ledgerDB.Client
	stopRenew := renewClaim(t, ledgerDB)
	defer stopRenew()
	red := redisproc.Start(t)
	proxy, err := faultproxy.Start(red.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	direct := redis.NewClient(&redis.Options{Addr: red.Addr()})
	t.Cleanup(func() { _ = direct.Close() })
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { _ = viaProxy.Close() })

	t.Setenv("CHAOS_LEDGER_URL", ledgerDB.URL)
	ruby := testsuite.StartSidekiq(t, red.URL(), rubyJobs, "-q", rubyQueue, "-c", "5")
	// Sidekiq 6.4.1 exits when Redis refuses it while booting, so the faults (the first may
	// restart Redis) wait until it has booted and registered itself.
	waitRubyRegistered(t, direct, ruby)

	fleet := make([]*workerProc, goWorkers)
	t.Cleanup(func() {
		for _, w := range fleet {
			if w != nil {
				w.kill()
			}
		}
	})
	for i := range fleet {
		fleet[i] = newWorkerProc(t, "go-worker-"+strconv.Itoa(i+1), []string{
			envRedisAddr + "=" + proxy.Addr(),
			envLedgerURL + "=" + ledgerDB.URL,
			envConcurrency + "=" + strconv.Itoa(goConcurrency),
			envQueues + "=" + goQueue,
		})
		if err := fleet[i].start(); err != nil {
			t.Fatal(err)
		}
	}

	// Load and faults.
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	goCounts, badCounts := &pushCounts{}, &pushCounts{}
	faults := &faultLog{}
	sched := &faultSchedule{rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), fleet: fleet,
		redis: red, proxy: proxy, log: faults, logf: t.Logf}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		prng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Add(1)
		go func() { defer wg.Done(); goProducer(ctx, prng, viaProxy, ledger, 25*time.Millisecond, goCounts) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); feedMalformed(ctx, direct, ledger, time.Second, badCounts) }()
	go func() { defer wg.Done(); sched.run(ctx) }()
	rubyOut := make(chan string, 1)
	go func() {
		out, err := testsuite.RunRuby(red.URL(), rubyProducer, testsuite.WithTimeout(dur+2*time.Minute),
			testsuite.WithEnv("CHAOS_RUBY_EVERY=0.05"))
		if err != nil {
			out = "ERROR: " + err.Error()
		}
		rubyOut <- out
	}()
	<-ctx.Done()
	wg.Wait()
	proxy.SetLatency(0)
	if err := ledger.Set(context.Background(), "chaos:stop", "1", 0).Err(); err != nil {
		t.Fatalf("stopping the Ruby producer: %v", err)
	}
	rubyResult := <-rubyOut
	rubyResult = strings.TrimSpace(rubyResult)
	t.Logf("Ruby producer: %s", rubyResult)
	if strings.HasPrefix(rubyResult, "ERROR") {
		t.Errorf("the Ruby producer failed: %s", rubyResult)
	}
	for _, w := range fleet {
		if !w.running() {
			if err := w.start(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Drain: workers stay up until nothing is waiting (or the deadline passes).
	stranded := waitSettled(t, direct, ledger)

	// Stop everything gracefully, then look once more.
	select {
	case <-ruby.Done():
		t.Errorf("the Ruby sidekiq process exited during the run:\n%s", ruby.Output())
	default:
	}
	for _, w := range fleet {
		w.term(30 * time.Second)
	}
	ruby.Stop(15 * time.Second)
	snap, lstate, err := observe(context.Background(), direct, ledger)
	if err != nil {
		t.Fatalf("reading the final state: %v", err)
	}
	acc := account(lstate, snap)

	r := &chaosReport{seed: seed, faultTime: dur, total: time.Since(began), faults: faults,
		goPushes: goCounts, badPushes: badCounts, ruby: rubyResult, acc: acc, interrupted: lstate.interrupted,
		pushed: len(lstate.pushed), overlaps: lstate.overlaps, stranded: len(stranded),
		aofRepairs: red.AOFRepairs(),
		dupBound:   (faults.count(faultKill) + faults.count(faultTerm) + faults.count(faultRedis) + faults.count(faultCut)) * goConcurrency}
	for _, w := range fleet {
		r.stopErrs += w.shutdownErrors()
	}
	table := r.markdown()
	t.Log("\n" + table)
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Errorf("CHAOS_REPORT: %v", err)
		}
	}

	for _, p := range acc.problems {
		t.Error(p)
	}
	for _, e := range faults.errs {
		t.Error(e)
	}
	for _, w := range fleet {
		for _, c := range w.unexpected() {
			t.Errorf("worker exit the suite did not cause: %s", c)
		}
	}
	if acc.duplicates > r.dupBound {
		t.Errorf("%d duplicate runs, more than the bound %d", acc.duplicates, r.dupBound)
	}
	if acc.stepReruns > r.dupBound {
		t.Errorf("durable steps ran again %d times, more than the bound %d", acc.stepReruns, r.dupBound)
	}
	if len(lstate.pushed) == 0 || acc.outcomes[outDone] == 0 {
		t.Errorf("the workload did nothing: %v", acc.outcomes)
	}
	for _, k := range badKinds {
		if badCounts.acked[k] > 0 && acc.malformed[k] == 0 {
			t.Errorf("no malformed payload of kind %s was handled as it should be", k)
		}
	}
}

// renewClaim keeps the ledger's database claimed for runs longer than a claim lasts.
func renewClaim(t *testing.T, db *testsuite.RealRedisDB) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if err := db.Renew(context.Background()); err != nil {
					t.Errorf("ledger database: %v", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// chaosSettings reads CHAOS_DURATION (default: the short form's) and CHAOS_SEED (default:
// the clock).
func chaosSettings(t *testing.T) (time.Duration, uint64) {
	dur := defaultDuration
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
		dur = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
		seed = n
	}
	return dur, seed
}

// strandGrace is how long the drain waits before it calls a job stranded: a job that
// sits only in an in-progress list while every worker is up. By then the lists of any
// killed worker have been recovered (ProcessTTL + RecoverInterval), so what is left
// belongs to a live process that does not know it holds it: a fetch whose reply was lost
// (Redis restarted or the connection was cut after the move). The server's reconciler
// pushes such jobs back within two heartbeat intervals, far less than this; one still
// stranded after it fails the test. See the package documentation.
const strandGrace = 2*workerProcessTTL + workerRecoverInterval

// waitSettled polls until no jid is waiting or unaccounted and the retry set is empty,
// or until what waits is only stranded jobs after strandGrace, which fails the test and
// returns them. After drainDeadline it fails the test but returns, so the checks still run.
func waitSettled(t *testing.T, rdb, ledger redis.UniversalClient) (stranded []string) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(drainDeadline)
	for {
		snap, lstate, err := observe(context.Background(), rdb, ledger)
		if err == nil {
			acc := account(lstate, snap)
			if acc.outcomes[outWaiting] == 0 && acc.outcomes[outLost] == 0 && len(snap.retry) == 0 {
				return nil
			}
			stranded = strandedJIDs(lstate, snap)
			if len(stranded) > 0 && len(stranded) == acc.outcomes[outWaiting] && acc.outcomes[outLost] == 0 &&
				len(snap.retry) == 0 && time.Since(began) > strandGrace {
				t.Errorf("%d jobs stranded in the in-progress list of a live worker after %v (a fetch reply was lost and the reconciler did not push them back): %v",
					len(stranded), strandGrace, head(stranded))
				return stranded
			}
			if time.Now().After(deadline) {
				t.Errorf("not settled after %v: %v", drainDeadline, acc.outcomes)
				return stranded
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("reading the final state: %v", err)
		}
		time.Sleep(time.Second) // polling with a deadline: nothing signals "settled"
	}
}

// strandedJIDs are the jids that have not run and sit only in in-progress lists.
func strandedJIDs(l *ledgerState, s *snapshot) []string {
	var out []string
	for jid := range s.inprogress {
		if l.maybe[jid] && l.runs[jid] == 0 && !s.queued[jid] && !s.scheduled[jid] {
			out = append(out, jid)
		}
	}
	sort.Strings(out)
	return out
}

func observe(ctx context.Context, rdb, ledger redis.UniversalClient) (*snapshot, *ledgerState, error) {
	s, err := takeSnapshot(ctx, rdb)
	if err != nil {
		return nil, nil, err
	}
	l, err := readLedger(ctx, ledger)
	if err != nil {
		return nil, nil, err
	}
	return s, l, nil
}

// rubyBootDeadline bounds how long the Ruby process may take to boot (slow on a loaded
// machine).
const rubyBootDeadline = 2 * time.Minute

// waitRubyRegistered waits until the Ruby sidekiq process has written its process record,
// which Sidekiq does once it has booted and connected. It fails the test if the process
// exits first or does not register within rubyBootDeadline.
func waitRubyRegistered(t *testing.T, rdb *redis.Client, ruby *testsuite.SidekiqProcess) {
	t.Helper()
	deadline := time.NewTimer(rubyBootDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := rdb.SCard(context.Background(), "processes").Result()
		if err == nil && n > 0 {
			return
		}
		select {
		case <-ruby.Done():
			t.Fatalf("the Ruby sidekiq process exited while booting:\n%s", ruby.Output())
		case <-deadline.C:
			t.Fatalf("the Ruby sidekiq process did not register within %v (last error: %v):\n%s",
				rubyBootDeadline, err, ruby.Output())
		case <-tick.C:
		}
	}
}
