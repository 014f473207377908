package sidekiq

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// The executor runs jobs: Concurrency workers take fetched jobs from the work channel,
// run each through the middleware chain and its handler, decide the outcome (decide.go)
// and hand it to the completer, which writes it. A worker never talks to Redis.
//
// When the server quiets, jobs fetched but not started go back to their queues (through
// the completer). When it stops, workers finish their job, and those still running at the
// deadline have their context cancelled; a job that ignores the cancellation is abandoned
// after hardShutdownGrace: its entry stays in the in-flight hash, and the end of the stop
// pushes it back to its queue.
type executor struct {
	reg       *register
	completer *completer
	handlers  map[string]*handlerEntry // read-only once started
	runMW     []RunMiddleware
	names     []string // queue names, by spec index
	identity  string
	policy    failurePolicy
	clock     Clock
	observe   func(time.Duration) // the run time of each job, for prefetch

	work  chan *unit
	quiet <-chan struct{}
	drain chan struct{} // closed when no more jobs will be dispatched

	jobCtx    context.Context // parent of every job's context
	jobCancel context.CancelFunc
	wg        sync.WaitGroup
}

// executorParams are an executor's dependencies.
type executorParams struct {
	reg         *register
	completer   *completer
	handlers    map[string]*handlerEntry
	runMW       []RunMiddleware
	names       []string
	identity    string
	policy      failurePolicy
	clock       Clock
	observe     func(time.Duration)
	concurrency int
	buffer      int // capacity of the work channel
	quiet       <-chan struct{}
}

func newExecutor(p executorParams) *executor {
	return &executor{
		reg: p.reg, completer: p.completer, handlers: p.handlers, runMW: p.runMW, names: p.names,
		identity: p.identity, policy: p.policy, clock: p.clock, observe: p.observe,
		work: make(chan *unit, p.buffer), quiet: p.quiet, drain: make(chan struct{}),
	}
}

// start launches n workers. Job contexts derive from ctx without its cancellation.
func (e *executor) start(ctx context.Context, n int) {
	e.jobCtx, e.jobCancel = context.WithCancel(context.WithoutCancel(ctx))
	for i := 0; i < n; i++ {
		e.wg.Add(1)
		go e.worker(fmt.Sprintf("%s%d", randomHex(2), i))
	}
}

// dispatch hands a fetched job to the workers.
func (e *executor) dispatch(u *unit) { e.work <- u }

// finishDispatch tells the workers that nothing more will be dispatched: they exit once
// the work channel is empty.
func (e *executor) finishDispatch() { close(e.drain) }

// wait waits for the workers until ctx ends; then it cancels every job's context, gives
// the handlers hardShutdownGrace to return, and abandons those that do not. It returns
// ctx's error when jobs had to be cancelled.
func (e *executor) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	defer e.jobCancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	e.jobCancel()
	select {
	case <-done:
	case <-time.After(hardShutdownGrace):
		for _, u := range e.reg.runningSnapshot() {
			u.abandoned.Store(true)
		}
	}
	return ctx.Err()
}

// hardShutdownGrace is how long cancelled handlers get to return before their jobs are
// given up on and pushed back (Sidekiq gives its threads 3 s).
const hardShutdownGrace = 3 * time.Second

func (e *executor) worker(tid string) {
	defer e.wg.Done()
	for {
		select {
		case u := <-e.work:
			e.handle(u, tid)
		case <-e.drain:
			select {
			case u := <-e.work:
				e.handle(u, tid)
			default:
				return
			}
		}
	}
}

func (e *executor) handle(u *unit, tid string) {
	select {
	case <-e.quiet:
		// Fetched but not started when quiet began: back to the head of its queue.
		e.completer.complete(&completion{u: u, d: decision{outcome: OutcomeRequeued}, requeue: true,
			ev: &JobEvent{Queue: e.names[u.q], Outcome: OutcomeRequeued}})
		e.reg.finish(u, false)
		return
	default:
	}
	e.run(u, tid)
}

// run runs one job and hands its outcome to the completer.
func (e *executor) run(u *unit, tid string) {
	queue := e.names[u.q]
	now := e.clock.Now()
	u.tid, u.startedAt = tid, now
	job, perr := ParseJobString(u.raw)
	if perr != nil {
		e.reg.start(u)
		e.completer.complete(&completion{u: u, err: perr, d: decision{
			outcome: OutcomeDead, failed: true, at: now, payload: annotateInvalid([]byte(u.raw), perr, now),
		}, ev: &JobEvent{Queue: queue, Outcome: OutcomeDead, Err: perr, Started: now}})
		e.reg.finish(u, true)
		return
	}
	if job.Queue == "" {
		job.Queue = queue // the list a job was fetched from is authoritative
	}
	u.job = job
	e.reg.start(u)

	name := job.HandlerName()
	entry := e.handlers[name]
	began := time.Now() // monotonic, whatever the clock says
	err := e.perform(entry, name, job)
	elapsed := time.Since(began)
	e.observe(elapsed)

	ev := &JobEvent{Job: job, Class: name, Queue: queue, Err: err, Started: now, Duration: elapsed}
	if !job.EnqueuedAt.IsZero() {
		ev.Latency = max(now.Sub(job.EnqueuedAt), 0)
	}
	var d decision
	if u.abandoned.Load() {
		d = decision{outcome: OutcomeRequeued}
	} else {
		var opts *handlerOptions
		if entry != nil {
			opts = &entry.opts
		}
		d = decide(decideInput{job: job, queue: queue, err: err, stopping: e.jobCtx.Err() != nil,
			opts: opts, policy: &e.policy, now: e.clock.Now()})
	}
	ev.Outcome = d.outcome
	e.completer.complete(&completion{u: u, job: job, err: err, d: d, ev: ev})
	e.reg.finish(u, true)
}

// perform runs the server's middleware, the handler's own and the handler.
func (e *executor) perform(entry *handlerEntry, name string, job *Job) error {
	ctx := withJob(e.jobCtx, job)
	return runRecovered(func() error {
		return runRunChain(ctx, e.runMW, job, func(ctx context.Context) error {
			if entry == nil {
				return &NoHandlerError{Class: name, Identity: e.identity}
			}
			return runRunChain(ctx, entry.opts.mws, job, func(ctx context.Context) error {
				if err := runStartHooks(ctx); err != nil {
					return err
				}
				return entry.h.Perform(ctx, job)
			})
		})
	})
}

// runRecovered calls f, turning a panic into a *PanicError.
func runRecovered(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}

// Perform runs h for job as a Server does: through mws (the first is outermost), then the
// start hooks added with OnHandlerStart, then h, with a panic turned into a *PanicError
// and the job available to JobFromContext. It decides and writes nothing: it is for tests
// and tools that run one handler outside a Server (testutil.Run wraps it).
func Perform(ctx context.Context, h Handler, job *Job, mws ...RunMiddleware) error {
	ctx = withJob(ctx, job)
	return runRecovered(func() error {
		return runRunChain(ctx, mws, job, func(ctx context.Context) error {
			if err := runStartHooks(ctx); err != nil {
				return err
			}
			return h.Perform(ctx, job)
		})
	})
}

type jobCtxKey struct{}

func withJob(ctx context.Context, job *Job) context.Context {
	return context.WithValue(ctx, jobCtxKey{}, job)
}

// JobFromContext returns the job a handler or run middleware is running, if any.
func JobFromContext(ctx context.Context) (*Job, bool) {
	j, ok := ctx.Value(jobCtxKey{}).(*Job)
	return j, ok
}
