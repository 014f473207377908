package sidekiq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Server runs jobs from Sidekiq queues with Go handlers, beside (or instead of) Ruby
// Sidekiq processes. The Web UI lists it as a process, with its running jobs, and can quiet
// and stop it.
//
// Register handlers and middleware, then Run (or Start and later Stop). A Server runs once;
// make a new one to run again.
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

	mu       sync.Mutex // guards handlers, runMW and state transitions
	handlers map[string]*handlerEntry
	runMW    []RunMiddleware
	started  bool

	startedAt time.Time
	order     *queueOrder
	orderMu   sync.Mutex
	qkeys     []string // queue:<q> per spec
	pkeys     []string // in-progress list per spec
	owners    []string // in-progress index value (process and queue) per spec

	quietOnce sync.Once
	quietCh   chan struct{}
	stopOnce  sync.Once
	stopReq   chan struct{} // closed when a stop is asked for (remote TERM)
	stopMu    sync.Mutex
	stopped   bool
	done      chan struct{}
	stopErr   error

	bgCtx     context.Context // cancelled when background loops must end
	bgCancel  context.CancelFunc
	jobCtx    context.Context // parent of handler contexts; cancelled at the shutdown deadline
	jobCancel context.CancelFunc

	work        chan *unit
	workers     sync.WaitGroup
	fetchers    sync.WaitGroup
	bg          sync.WaitGroup
	outstanding atomic.Int64
	avgJobNanos atomic.Int64 // moving average of job run time, for prefetch
	queueBusy   []atomic.Int64
	freed       chan struct{}

	running   sync.Map     // tid -> *unit
	lastBeat  atomic.Int64 // unix nanoseconds of the last heartbeat written
	services  []Service
	observers observers
	stats     stats
	acker     *acker
	heartbeat *heartbeat
	reconcile *reconciler
}

// unit is one fetched job on its way through the server.
type unit struct {
	q         int    // index into specs
	raw       string // exact bytes, for ack and requeue
	tid       string
	startedAt time.Time
	abandoned atomic.Bool // set when shutdown gave up on it: its outcome is ignored
}

// NewServer returns a Server working the queues of cfg on rdb. A nil cfg means every
// default. Configuration errors (a weight ≤ 0 in weighted mode, say) are reported by Start
// and Run.
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
		freed:    make(chan struct{}, 1),
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
	e := &handlerEntry{h: h}
	for _, o := range opts {
		o.applyHandle(e)
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
	if s.cfgErr != nil {
		return s.cfgErr
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("sidekiq: server already started")
	}
	s.started = true
	s.mu.Unlock()

	s.startedAt = s.cfg.Clock.Now()
	s.order = newQueueOrder(s.specs, s.mode, mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64())))
	s.qkeys = make([]string, len(s.specs))
	s.pkeys = make([]string, len(s.specs))
	s.owners = make([]string, len(s.specs))
	for i, q := range s.specs {
		s.qkeys[i] = s.keys.queue(q.name)
		s.pkeys[i] = s.keys.inprogress(s.identity, q.name)
		s.owners[i] = inProgressOwner(s.identity, q.name)
	}
	s.queueBusy = make([]atomic.Int64, len(s.specs))
	s.work = make(chan *unit, s.cfg.Concurrency+s.cfg.Prefetch+len(s.specs)+1)
	s.bgCtx, s.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	s.jobCtx, s.jobCancel = context.WithCancel(context.WithoutCancel(ctx))
	s.acker = newAcker(s)
	s.reconcile = newReconciler(s)
	s.heartbeat = newHeartbeat(s)

	// Be alive before holding anything: the first beat writes the process record that
	// keeps other processes' recoverers away from our in-progress lists.
	if err := s.heartbeat.beat(ctx); err != nil {
		return fmt.Errorf("sidekiq: first heartbeat: %w", err)
	}
	if err := s.registerInProgress(ctx); err != nil {
		return fmt.Errorf("sidekiq: registering in-progress lists: %w", err)
	}
	for i := 0; i < s.cfg.Concurrency; i++ {
		s.workers.Add(1)
		go s.worker(fmt.Sprintf("%s%d", randomHex(2), i))
	}
	s.fetchers.Add(1)
	go s.fetchLoop()
	s.goBackground(s.acker.loop)
	s.goBackground(s.heartbeat.loop)
	s.goBackground(s.recoverLoop)
	s.goBackground(s.reconcile.loop)
	s.goBackground(s.scheduleLoop)
	if err := s.startServices(ctx); err != nil {
		s.services = nil // startServices stopped the ones it started
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		_ = s.Stop(sctx)
		return err
	}
	s.log.Info("ferry server started",
		zap.Int("concurrency", s.cfg.Concurrency),
		zap.String("queue_mode", s.mode.String()),
		zap.Strings("queues", s.queueNames()))
	return nil
}

func (s *Server) goBackground(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

// Queues returns the names of the queues the server works, in the order of Config.Queues.
func (s *Server) Queues() []string { return s.queueNames() }

// Ready reports whether the server is started, not quiet, and wrote a heartbeat within
// the last ProcessTTL: what a readiness probe asks.
func (s *Server) Ready() bool {
	last := s.lastBeat.Load()
	if last == 0 || s.isQuiet() {
		return false
	}
	return time.Since(time.Unix(0, last)) < s.cfg.ProcessTTL
}

func (s *Server) queueNames() []string {
	out := make([]string, len(s.specs))
	for i, q := range s.specs {
		out[i] = q.name
	}
	return out
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

// StopRequested is closed when a stop was asked for from outside (the Web UI's Stop button,
// Sidekiq::Process#stop!). Run handles it; users of Start should call Stop when it closes.
func (s *Server) StopRequested() <-chan struct{} { return s.stopReq }

func (s *Server) requestStop() {
	s.stopOnce.Do(func() { close(s.stopReq) })
}

// Done is closed when the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop shuts the server down: it quiets, waits for running jobs until ctx ends, then
// cancels their contexts, gives them a moment to return, pushes every unfinished and
// fetched-but-unstarted job back to the head of its queue, and removes the process from the
// Web UI. It returns ctx's error if jobs had to be cancelled. Calling Stop again waits for
// the first call to finish.
func (s *Server) Stop(ctx context.Context) error {
	s.stopMu.Lock()
	if s.stopped {
		s.stopMu.Unlock()
		<-s.done
		return s.stopErr
	}
	s.stopped = true
	s.stopMu.Unlock()
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		close(s.done)
		return nil
	}
	s.stopErr = s.shutdown(ctx)
	close(s.done)
	return s.stopErr
}

// hardShutdownGrace is how long cancelled handlers get to return before their jobs are
// requeued regardless (Sidekiq gives its threads 3 s).
const hardShutdownGrace = 3 * time.Second

func (s *Server) shutdown(ctx context.Context) error {
	s.Quiet()
	var result error
	if err := s.stopServices(ctx, s.services); err != nil {
		s.log.Warn("a service did not stop cleanly", zap.Error(err))
		result = err
	}
	s.fetchers.Wait() // fetches in flight come back within FetchTimeout
	close(s.work)     // workers requeue what is left in the channel, then exit

	workersDone := make(chan struct{})
	go func() { s.workers.Wait(); close(workersDone) }()
	select {
	case <-workersDone:
	case <-ctx.Done():
		result = errors.Join(result, ctx.Err())
		s.log.Warn("shutdown timeout reached: cancelling running jobs")
		s.jobCancel()
		select {
		case <-workersDone:
		case <-time.After(hardShutdownGrace):
			s.running.Range(func(_, v any) bool {
				u := v.(*unit)
				u.abandoned.Store(true)
				s.log.Warn("abandoning a job that ignored cancellation; it goes back to its queue",
					zap.String("queue", s.specs[u.q].name))
				return true
			})
		}
	}
	s.jobCancel()

	// Background loops end; the acker flushes every pending ack before returning.
	s.bgCancel()
	s.bg.Wait()

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	n, err := s.requeueOwn(cctx)
	if err != nil {
		s.log.Error("pushing unfinished jobs back failed; another process will recover them", zap.Error(err))
		result = errors.Join(result, err)
	} else if n > 0 {
		s.log.Info("pushed unfinished jobs back to their queues", zap.Int("jobs", n))
	}
	if err := s.heartbeat.clear(cctx); err != nil {
		s.log.Warn("removing the process record failed; it expires by itself", zap.Error(err))
	}
	s.log.Info("ferry server stopped")
	return result
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
