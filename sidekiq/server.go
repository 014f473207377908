package sidekiq

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// Server runs jobs from Sidekiq queues with Go handlers, beside (or instead of) Ruby
// Sidekiq processes. The Web UI lists it as a process, with its running jobs, and can quiet
// and stop it.
//
// Register handlers and middleware, then Run (or Start and later Stop). A Server runs once;
// make a new one to run again.
//
// Inside, a Server wires components that each own their state (see doc.go): a store that
// alone talks to Redis, an in-flight register of the jobs it holds, and a fetcher,
// executor, completer, heartbeat, scheduler, recoverer and reconciler.
type Server struct {
	rdb      redis.UniversalClient
	cfg      Config
	specs    []queueSpec
	mode     QueueMode
	keys     keyspace
	log      *zap.Logger
	identity string
	client   *Client
	cfgErr   error

	mu        sync.Mutex // guards registration and the started flag
	handlers  map[string]*handlerEntry
	runMW     []RunMiddleware
	services  []Service
	observers observers
	started   bool

	quietOnce sync.Once
	quietCh   chan struct{}
	stopOnce  sync.Once
	stopReq   chan struct{} // closed when a stop is asked for (remote TERM)
	stopMu    sync.Mutex
	stopped   bool
	done      chan struct{}
	stopErr   error

	runMu      sync.Mutex // held by Start while it builds and starts the components
	running    bool       // Start succeeded (under runMu)
	bgCancel   context.CancelFunc
	stats      stats
	store      *store
	reg        *register
	exec       *executor
	completer  *completer
	fetcher    *fetcher
	heartbeat  *heartbeat
	scheduler  *scheduler
	recoverer  *recoverer
	reconciler *reconciler
}

// NewServer returns a Server working the queues of cfg on rdb. A nil cfg means every
// default. A configuration error (see Config.Validate) is reported by Start and Run; call
// cfg.Validate first to report it earlier.
func NewServer(rdb redis.UniversalClient, cfg *Config) *Server {
	c, specs, mode, err := cfg.withDefaults()
	s := &Server{
		rdb:      rdb,
		cfg:      c,
		specs:    specs,
		mode:     mode,
		keys:     newKeyspace(c.Namespace),
		log:      c.Logger,
		cfgErr:   err,
		handlers: map[string]*handlerEntry{},
		quietCh:  make(chan struct{}),
		stopReq:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.identity = fmt.Sprintf("%s:%d:%s", c.Hostname, os.Getpid(), randomHex(6))
	s.log = s.log.With(zap.String("identity", s.identity))
	s.client = NewClient(rdb, &ClientConfig{Namespace: c.Namespace, TimeFormat: c.TimeFormat, Logger: c.Logger, Clock: c.Clock})
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Identity is the process identity shown in the Web UI: hostname:pid:nonce.
func (s *Server) Identity() string { return s.identity }

// Client returns a Client that shares the server's Redis, namespace and push middleware,
// for handlers that enqueue more jobs.
func (s *Server) Client() *Client { return s.client }

// Handle registers h for jobs whose class is class. For ActiveJob jobs, class is the
// ActiveJob class (the payload's "wrapped"), not the wrapper. Registering a class twice
// panics, as does registering after Start.
func (s *Server) Handle(class string, h Handler, opts ...HandleOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("sidekiq: Handle after Start")
	}
	if class == "" || h == nil {
		panic("sidekiq: Handle needs a class name and a handler")
	}
	if _, dup := s.handlers[class]; dup {
		panic(fmt.Sprintf("sidekiq: a handler for %q is already registered", class))
	}
	e := &handlerEntry{h: h, opts: handlerOptions{maxRetries: -1}}
	for _, o := range opts {
		o.applyHandle(&e.opts)
	}
	s.handlers[class] = e
}

// Use adds middleware: run middleware wraps every job this server runs, push middleware
// every push of Server.Client. Call it before Start.
func (s *Server) Use(mws ...Middleware) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("sidekiq: Use after Start")
	}
	push, run := splitMiddleware(mws)
	s.runMW = append(s.runMW, run...)
	s.client.push = append(s.client.push, push...)
}

// Start registers the process, starts fetching and returns at once. ctx bounds only the
// start-up; stop the server with Stop.
func (s *Server) Start(ctx context.Context) error {
	if err := cmp.Or(s.cfgErr, checkCluster(s.rdb, s.cfg.Namespace)); err != nil {
		return err
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("sidekiq: server already started")
	}
	s.started = true
	s.mu.Unlock()
	s.runMu.Lock()
	defer s.runMu.Unlock()
	s.build()

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bgCancel = cancel
	// Be alive before holding anything: the first beat writes the process record that
	// keeps other processes' recoverers away from our in-flight hash.
	if err := s.heartbeat.beat(ctx); err != nil {
		cancel()
		return fmt.Errorf("sidekiq: first heartbeat: %w", err)
	}
	if err := s.store.registerInflight(ctx); err != nil {
		cancel()
		_ = s.store.unregister(context.WithoutCancel(ctx))
		return fmt.Errorf("sidekiq: registering the in-flight hash: %w", err)
	}
	s.completer.start(bg)
	s.exec.start(ctx, s.cfg.Concurrency)
	s.fetcher.start(bg)
	s.heartbeat.start(bg)
	s.scheduler.start(bg)
	s.recoverer.start(bg)
	s.reconciler.start(bg)
	if err := s.startServices(ctx); err != nil {
		s.services = nil // startServices stopped the ones it started
		s.stopMu.Lock()
		s.stopped = true
		s.stopMu.Unlock()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		_ = s.shutdown(sctx)
		_ = s.store.unregister(sctx)
		s.stopErr = err
		close(s.done)
		return err
	}
	s.running = true
	s.log.Info("ferry server started",
		zap.Int("concurrency", s.cfg.Concurrency),
		zap.String("queue_mode", s.mode.String()),
		zap.Strings("queues", s.Queues()))
	return nil
}

// build makes the components, wired to each other.
func (s *Server) build() {
	c := &s.cfg
	names := s.Queues()
	s.store = newStore(s.rdb, s.keys, s.identity, s.specs)
	s.reg = newRegister(len(s.specs), c.PrefetchBytes)
	jobLog := newJobLogger(s.log)
	metrics := newServerMetrics(c.SidekiqVersion)
	s.completer = newCompleter(completerParams{
		store: s.store, reg: s.reg, stats: &s.stats, observers: s.observers, log: jobLog,
		onDeath: c.OnDeath, deadMax: c.DeadMaxJobs, deadTimeout: c.DeadTimeout, clock: c.Clock, names: names,
		metrics: metrics, buffer: 4*c.Concurrency + 16,
	})
	s.exec = newExecutor(executorParams{
		reg: s.reg, completer: s.completer, handlers: s.handlers, runMW: s.runMW, names: names,
		identity: s.identity, clock: c.Clock, concurrency: c.Concurrency, quiet: s.quietCh,
		policy:  failurePolicy{maxRetries: c.MaxRetries, retryDelay: c.RetryDelay, format: c.TimeFormat, version: c.SidekiqVersion},
		observe: func(d time.Duration) { s.fetcher.observeDuration(d) },
		buffer:  c.Concurrency + c.Prefetch + 1,
	})
	s.fetcher = newFetcher(fetcherParams{
		store: s.store, reg: s.reg, exec: s.exec, specs: s.specs, mode: s.mode, log: s.log,
		observers: s.observers, quiet: s.quietCh, concurrency: c.Concurrency, prefetch: c.Prefetch,
		prefetchBytes: c.PrefetchBytes, fetchTimeout: c.FetchTimeout,
	})
	startedAt := c.Clock.Now()
	s.heartbeat = newHeartbeat(heartbeatParams{
		store: s.store, reg: s.reg, stats: &s.stats, log: s.log, jobLog: jobLog, observers: s.observers,
		clock: c.Clock, info: processInfo(c, s.identity, startedAt, s.specs, s.mode, s.fetcher.order.static), concurrency: c.Concurrency,
		ttl: c.ProcessTTL, interval: c.HeartbeatInterval, names: names, isQuiet: s.isQuiet, onSignal: s.onSignal,
		metrics: metrics,
	})
	s.scheduler = newScheduler(s.store, s.keys, s.log, s.observers, c.Clock, c.TimeFormat, c.PollInterval, s.quietCh)
	s.recoverer = newRecoverer(s.store, s.log, s.observers, s.identity, c.RecoverInterval)
	s.reconciler = newReconciler(s.store, s.reg, s.log, s.observers, reconcileEvery*c.HeartbeatInterval, s.quietCh)
}

// Queues returns the names of the queues the server works, in the order of Config.Queues.
func (s *Server) Queues() []string {
	out := make([]string, len(s.specs))
	for i, q := range s.specs {
		out[i] = q.name
	}
	return out
}

// Ready reports whether the server is started, not quiet, and wrote a heartbeat within
// the last ProcessTTL: what a readiness probe asks.
func (s *Server) Ready() bool {
	s.runMu.Lock()
	running := s.running
	s.runMu.Unlock()
	if !running || s.isQuiet() {
		return false
	}
	last := s.heartbeat.lastBeat.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < s.cfg.ProcessTTL
}

// Quiet stops fetching new jobs (and polling the schedule) while running jobs finish, as
// Sidekiq's TSTP does. The process stays listed, marked quiet. Jobs fetched but not yet
// started go back to their queues.
func (s *Server) Quiet() {
	s.quietOnce.Do(func() {
		close(s.quietCh)
		s.log.Info("quiet: no new jobs will be fetched")
	})
}

func (s *Server) isQuiet() bool {
	select {
	case <-s.quietCh:
		return true
	default:
		return false
	}
}

// onSignal acts on a remote signal read by the heartbeat.
func (s *Server) onSignal(sig string) {
	s.Quiet()
	if sig == "TERM" || sig == "INT" {
		s.stopOnce.Do(func() { close(s.stopReq) })
	}
}

// StopRequested is closed when a stop was asked for from outside (the Web UI's Stop button,
// Sidekiq::Process#stop!). Run handles it; users of Start should call Stop when it closes.
func (s *Server) StopRequested() <-chan struct{} { return s.stopReq }

// Done is closed when the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop shuts the server down: it quiets, waits for running jobs until ctx ends, then
// cancels their contexts, gives them a moment (3 s) to return, pushes every unfinished and
// fetched-but-unstarted job back to the head of its queue, and removes the process from the
// Web UI. It returns ctx's error if jobs had to be cancelled.
//
// Stop returns by ctx's deadline plus a few seconds (the 3 s handlers get after their
// cancellation, and 2 s for the last writes) even when Redis hangs: what it could not
// write then (outcomes of finished jobs, the push back) stays in this process's in-flight
// hash, where a recoverer finds it once the process record expires (Config.ProcessTTL).
// Calling Stop again waits for the first call to finish.
func (s *Server) Stop(ctx context.Context) error {
	s.stopMu.Lock()
	if s.stopped {
		s.stopMu.Unlock()
		<-s.done
		return s.stopErr
	}
	s.stopped = true
	s.stopMu.Unlock()
	s.runMu.Lock() // a Start in progress finishes first
	running := s.running
	s.runMu.Unlock()
	if !running {
		close(s.done)
		return nil
	}
	s.stopErr = s.shutdown(ctx)
	close(s.done)
	return s.stopErr
}

// finalGrace is how long the Redis work after the jobs (their outcomes, the push back, the
// last heartbeat) may take beyond the stop's deadline.
const finalGrace = 2 * time.Second

func (s *Server) shutdown(ctx context.Context) error {
	s.Quiet()
	var result error
	if err := s.stopServices(ctx, s.services); err != nil {
		s.log.Warn("a service did not stop cleanly", zap.Error(err))
		result = err
	}
	s.fetcher.stop(ctx)
	s.exec.finishDispatch()
	if err := s.exec.wait(ctx); err != nil {
		s.log.Warn("shutdown timeout reached: running jobs were cancelled and go back to their queues")
		result = errors.Join(result, err)
	}

	fctx, cancel := finalContext(ctx)
	defer cancel()
	s.completer.stop(fctx)
	s.scheduler.stop(fctx)
	s.recoverer.stop(fctx)
	s.reconciler.stop(fctx)
	s.heartbeat.stop(fctx)
	s.bgCancel()

	var n int
	err := bounded(fctx, func(ctx context.Context) (err error) {
		n, err = s.store.returnAll(ctx)
		return err
	})
	if err != nil {
		s.log.Error("pushing unfinished jobs back failed; a recoverer returns them once this process's record expires",
			logcap.Error(err))
		result = errors.Join(result, err)
	} else if n > 0 {
		s.log.Info("pushed unfinished jobs back to their queues", zap.Int("jobs", n))
	}
	if err := bounded(fctx, s.store.clearProcess); err != nil {
		s.log.Warn("removing the process record failed; it expires by itself", logcap.Error(err))
	}
	s.log.Info("ferry server stopped")
	return result
}

// finalContext bounds the Redis work of a stop after its jobs: ctx's own deadline plus
// finalGrace (from now, if the deadline has passed), or 10 s without a deadline.
func finalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(base, later(dl, time.Now()).Add(finalGrace))
	}
	return context.WithTimeout(base, 10*time.Second)
}

// waitDone waits for done until ctx ends, and reports whether done closed.
func waitDone(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Run starts the server and blocks until ctx ends or a stop is asked for through Redis,
// then stops it, giving running jobs Config.ShutdownTimeout to finish.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.stopReq:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.Stop(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // jobs were cancelled and requeued: a normal outcome of a timed stop
	}
	return err
}
