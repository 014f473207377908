package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// WorkerEnv is the environment variable that turns the test binary into a chaos worker
// process (see TestMain): the suite re-executes its own binary with it set to "1".
const WorkerEnv = "CHAOS_WORKER"

// Environment of a worker process.
const (
	envRedisAddr   = "CHAOS_REDIS_ADDR"  // the private Redis, through the fault proxy
	envLedgerURL   = "CHAOS_LEDGER_URL"  // the ledger's redis:// URL
	envConcurrency = "CHAOS_CONCURRENCY" // Config.Concurrency
	envQueues      = "CHAOS_QUEUES"      // comma-separated queue names
	// envReadyFD names the file descriptor on which the worker writes one byte once its
	// SIGTERM handler is installed; the suite sends SIGTERM only after that byte.
	envReadyFD = "CHAOS_READY_FD"
)

// Worker process timings: short enough that a SIGKILLed process's jobs come back within
// seconds, and a SIGTERM lands while ChaosSlow runs.
const (
	workerShutdownTimeout = time.Second
	workerProcessTTL      = 10 * time.Second
	workerRecoverInterval = 2 * time.Second
	workerRetryDelay      = time.Second
	slowMin, slowMax      = 500 * time.Millisecond, 3 * time.Second
	// workerLease is ChaosWLocked's worker lock lease. A run marks its key as running in
	// the ledger for less than the lease (overlapTTL), so the mark of a SIGKILLed run is
	// gone before its lease frees the lock; a run lasts far less than either.
	workerLease = 3 * time.Second
	overlapTTL  = 2 * time.Second
	wlockMin    = 50 * time.Millisecond
	wlockSpread = 250 * time.Millisecond
)

// Job classes the Go workers handle.
const (
	ClassOK     = "ChaosOK"     // records its run
	ClassSlow   = "ChaosSlow"   // sleeps 0.5–3 s, then records its run
	ClassFail   = "ChaosFail"   // always fails (pushed with a small retry count)
	ClassLocked = "ChaosLocked" // named inputs {"key": string}, queue-locked on "key"
	ClassSteps  = "ChaosSteps"  // durable step "a", then fails its first attempt; the retry must skip "a"
	// ClassWLocked takes named inputs {"key": string} and runs under locks.WorkerLock on
	// "key" over a few keys; it checks in the ledger that no other run of its key is going.
	ClassWLocked = "ChaosWLocked"
	ClassRuby    = "ChaosRuby" // run by the Ruby sidekiq process on the Ruby queue
)

// RunWorker is the main of a chaos worker process: it works the queues of its environment
// on the Redis at CHAOS_REDIS_ADDR until SIGTERM or SIGINT, then stops as a Ferry worker
// binary does. It returns the process exit code: 0, ExitShutdownError when the stop that
// followed a signal reported an error (Redis unreachable while it pushed unfinished jobs
// back: they stay in its in-progress list, which another process recovers), 1 otherwise.
func RunWorker() int {
	log, _ := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	defer func() { _ = log.Sync() }()
	signalled, err := runWorker(log)
	switch {
	case err == nil:
		return 0
	case signalled:
		log.Warn("chaos worker stopped with an error", zap.Error(err))
		return ExitShutdownError
	}
	log.Error("chaos worker failed", zap.Error(err))
	return 1
}

// ExitShutdownError is a worker's exit code when its shutdown after SIGTERM reported an
// error.
const ExitShutdownError = 3

// sayReady tells the suite, through the descriptor named by envReadyFD, that SIGTERM is
// now handled. Until then the signal would kill the process outright.
func sayReady() {
	fd, err := strconv.Atoi(os.Getenv(envReadyFD))
	if err != nil || fd < 3 {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	_, _ = f.Write([]byte{1})
	_ = f.Close()
}

// runWorker runs servers until a signal; it reports whether one arrived.
func runWorker(log *zap.Logger) (bool, error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sayReady()
	conc, err := strconv.Atoi(os.Getenv(envConcurrency))
	if err != nil {
		return false, fmt.Errorf("%s: %w", envConcurrency, err)
	}
	lopts, err := redis.ParseURL(os.Getenv(envLedgerURL))
	if err != nil {
		return false, fmt.Errorf("%s: %w", envLedgerURL, redact.Error(err, os.Getenv(envLedgerURL)))
	}
	ledger := redis.NewClient(lopts)
	defer ledger.Close()
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv(envRedisAddr)})
	defer rdb.Close()
	queues := strings.Split(os.Getenv(envQueues), ",")
	for {
		srv := newWorkerServer(rdb, ledger, log, conc, queues)
		err := srv.Run(ctx)
		if err == nil || ctx.Err() != nil {
			return ctx.Err() != nil, err
		}
		// Run returns early only when Start failed (Redis restarting or cut): try again
		// with a new Server, as a supervisor would restart the process.
		log.Warn("worker start failed; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return true, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func newWorkerServer(rdb, ledger redis.UniversalClient, log *zap.Logger, conc int, queues []string) *sidekiq.Server {
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{
		Concurrency:     conc,
		Queues:          queues,
		ShutdownTimeout: workerShutdownTimeout,
		ProcessTTL:      workerProcessTTL,
		RecoverInterval: workerRecoverInterval,
		PollInterval:    500 * time.Millisecond,
		RetryDelay:      func(int, error, *sidekiq.Job) time.Duration { return workerRetryDelay },
		// The accounting looks for every failed job in the dead set: never trim it.
		DeadMaxJobs: 1 << 30,
		Logger:      log,
	})
	srv.Use(locks.QueueLock(rdb, locks.Inputs("key"), locks.Classes(ClassLocked)))
	srv.Use(middleware.Steps(rdb, nil))
	srv.Use(locks.WorkerLock(rdb, locks.Inputs("key"), locks.Classes(ClassWLocked),
		locks.Lease(workerLease), locks.Backoff(200*time.Millisecond, 2*time.Second), locks.Logger(log)))
	srv.Handle(ClassOK, sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		return recordRun(ctx, ledger, job.JID)
	}))
	srv.Handle(ClassSlow, sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		d := slowMin + rand.N(slowMax-slowMin)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			// Shutdown deadline: the job goes back to its queue.
			_ = ledger.Incr(context.WithoutCancel(ctx), LedgerInterrupted).Err()
			return ctx.Err()
		}
		return recordRun(context.WithoutCancel(ctx), ledger, job.JID)
	}))
	srv.Handle(ClassFail, sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		if err := ledger.HIncrBy(ctx, LedgerFails, job.JID, 1).Err(); err != nil {
			return err
		}
		return errors.New("ChaosFail fails on purpose")
	}))
	srv.Handle(ClassLocked, sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		var in struct {
			Key string `json:"key"`
		}
		if err := job.DecodeArgs(&in); err != nil {
			return sidekiq.Discard(fmt.Errorf("ChaosLocked: bad named inputs: %w", err))
		}
		if in.Key == "" {
			return sidekiq.Discard(errors.New("ChaosLocked: named input \"key\" missing or empty"))
		}
		return recordRun(ctx, ledger, job.JID)
	}))
	srv.Handle(ClassSteps, sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		_, err := middleware.Step(ctx, "a", func(ctx context.Context) (int, error) {
			return 1, ledger.HIncrBy(ctx, LedgerSteps, job.JID, 1).Err()
		})
		if err != nil {
			return err
		}
		if job.RetryCount == nil {
			return errors.New("ChaosSteps fails its first attempt after step a")
		}
		return recordRun(ctx, ledger, job.JID)
	}))
	srv.Handle(ClassWLocked, sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		return runWorkerLocked(ctx, ledger, job)
	}))
	return srv
}

// runWorkerLocked is ChaosWLocked's handler: it marks its key as running in the ledger
// (SET NX), counts an overlap if another run's mark is there, works a little, and removes
// its own mark.
func runWorkerLocked(ctx context.Context, ledger redis.UniversalClient, job *sidekiq.Job) error {
	var in struct {
		Key string `json:"key"`
	}
	if err := job.DecodeArgs(&in); err != nil || in.Key == "" {
		return sidekiq.Discard(fmt.Errorf("ChaosWLocked: bad named inputs: %v", err))
	}
	mark := LedgerRunningPrefix + in.Key
	ok, err := ledger.SetNX(ctx, mark, job.JID, overlapTTL).Result()
	if err != nil {
		return err
	}
	if ok {
		defer func() { _ = unmarkScript.Run(context.WithoutCancel(ctx), ledger, []string{mark}, job.JID).Err() }()
	} else if err := ledger.Incr(ctx, LedgerOverlaps).Err(); err != nil {
		return err
	}
	select {
	case <-time.After(wlockMin + rand.N(wlockSpread)):
	case <-ctx.Done():
		return ctx.Err()
	}
	return recordRun(ctx, ledger, job.JID)
}

// unmarkScript deletes KEYS[1] only while it holds ARGV[1].
var unmarkScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)
