package sidekiq

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/internal/logcap"
)

// Version is Ferry's version, shown in the Web UI's process list.
const Version = "0.2.0"

// The heartbeat keeps the process visible to the Web UI and to other processes, every
// HeartbeatInterval, in one MULTI/EXEC:
//
//   - the statistics counted since the last beat;
//   - the running jobs in <identity>:work (Sidekiq 6.4.2+) and <identity>:workers (6.4.1):
//     each entry is encoded once, written by the first beat that sees the job running and
//     deleted by the first beat after it ended, so a long job is not copied into Redis
//     again at every beat; an entry's payload is cut to workEntryMax bytes (the Busy page
//     only shows it);
//   - the process in the processes set and its <identity> hash (info, busy, beat, quiet,
//     rss, rtt_us, concurrency), expiring after ProcessTTL;
//   - this process's entry in the in-flight index;
//   - then, in a pipeline of their own, the execution metrics of Sidekiq 7/8's Metrics tab
//     (execmetrics.go) for the jobs finished since the last beat;
//   - one signal popped from <identity>-signals: TSTP quiets, TERM stops, TTIN logs every
//     goroutine's stack.
type heartbeat struct {
	store       *store
	reg         *register
	stats       *stats
	log         *zap.Logger
	jobLog      *jobLogger
	obs         observers
	clock       Clock
	info        string // the "info" JSON, fixed for the life of the process
	concurrency int
	ttl         time.Duration
	interval    time.Duration
	names       []string
	isQuiet     func() bool
	onSignal    func(sig string) // TSTP and TERM
	metrics     *execMetrics     // flushed after each beat; nil: none

	written  map[string]*unit // tid -> job whose entry the work hashes hold
	full     bool             // the work hashes must be rewritten whole
	lastBeat atomic.Int64     // unix nanoseconds of the last beat written
	cancel   context.CancelFunc
	done     chan struct{}
}

// heartbeatParams are a heartbeat's dependencies.
type heartbeatParams struct {
	store       *store
	reg         *register
	stats       *stats
	log         *zap.Logger
	jobLog      *jobLogger
	observers   observers
	clock       Clock
	info        string
	concurrency int
	ttl         time.Duration
	interval    time.Duration
	names       []string
	isQuiet     func() bool
	onSignal    func(sig string)
	metrics     *execMetrics
}

func newHeartbeat(p heartbeatParams) *heartbeat {
	return &heartbeat{
		store: p.store, reg: p.reg, stats: p.stats, log: p.log, jobLog: p.jobLog, obs: p.observers, clock: p.clock,
		info: p.info, concurrency: p.concurrency, ttl: p.ttl, interval: p.interval, names: p.names,
		isQuiet: p.isQuiet, onSignal: p.onSignal, metrics: p.metrics, written: map[string]*unit{}, full: true, done: make(chan struct{}),
	}
}

// processInfo is the "info" JSON of the process record, as Sidekiq writes it: the 8.x
// "capsules" entry (one capsule, "default", with its mode and weights) and the "queues"
// and "weights" that 6.x and 7.x read, all in the order the queues are served (declared
// order; for ranked mode, rank order). order is the served order of specs' indexes.
func processInfo(cfg *Config, identity string, startedAt time.Time, specs []queueSpec, mode QueueMode, order []int) string {
	weights := make([]byte, 0, 64)
	weights = append(weights, '{')
	queues := make([]byte, 0, 64)
	queues = append(queues, '[')
	allOne := true
	for k, i := range order {
		q := specs[i]
		w := q.weight
		if mode != QueueModeWeighted {
			w = 0 // strict and ranked are served in order; Sidekiq shows them as strict
		}
		if w != 1 {
			allOne = false
		}
		if k > 0 {
			weights = append(weights, ',')
			queues = append(queues, ',')
		}
		weights = jsonwire.AppendString(weights, q.name)
		weights = append(weights, ':')
		weights = strconv.AppendInt(weights, int64(w), 10)
		queues = jsonwire.AppendString(queues, q.name)
	}
	weights = append(weights, '}')
	queues = append(queues, ']')
	capMode := "strict"
	if mode == QueueModeWeighted {
		capMode = "weighted"
		if allOne {
			capMode = "random"
		}
	}
	labels, _ := marshalNoEscape(append([]string{"ferry"}, cfg.Labels...))

	b := make([]byte, 0, 512)
	field := func(k string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = jsonwire.AppendString(b, k)
		b = append(b, ':')
	}
	b = append(b, '{')
	field("hostname")
	b = jsonwire.AppendString(b, cfg.Hostname)
	field("started_at")
	b = jsonwire.AppendFloat(b, epochSeconds(startedAt))
	field("pid")
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	field("tag")
	b = jsonwire.AppendString(b, cfg.Tag)
	field("concurrency")
	b = strconv.AppendInt(b, int64(cfg.Concurrency), 10)
	field("capsules")
	b = append(b, `{"default":{"concurrency":`...)
	b = strconv.AppendInt(b, int64(cfg.Concurrency), 10)
	b = append(b, `,"mode":`...)
	b = jsonwire.AppendString(b, capMode)
	b = append(b, `,"weights":`...)
	b = append(b, weights...)
	b = append(b, `}}`...)
	field("queues")
	b = append(b, queues...)
	field("weights")
	b = append(b, '[')
	b = append(b, weights...)
	b = append(b, ']')
	field("labels")
	b = append(b, labels...)
	field("identity")
	b = jsonwire.AppendString(b, identity)
	field("version")
	b = jsonwire.AppendString(b, "ferry-"+Version)
	field("embedded")
	b = append(b, "false}"...)
	return string(b)
}

// start runs a beat every interval until stop.
func (h *heartbeat) start(ctx context.Context) {
	ctx, h.cancel = context.WithCancel(ctx)
	go h.loop(ctx)
}

// stop ends the loop, then writes a last beat (the final statistics), until ctx ends.
func (h *heartbeat) stop(ctx context.Context) {
	h.cancel()
	waitDone(ctx, h.done)
	if err := bounded(ctx, h.beat); err != nil {
		h.log.Warn("final heartbeat failed", logcap.Error(err))
	}
}

func (h *heartbeat) loop(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.beat(ctx); err != nil && ctx.Err() == nil {
				h.obs.redisError("heartbeat", err)
				h.log.Warn("heartbeat failed", logcap.Error(err))
			}
		}
	}
}

// beat writes one heartbeat.
func (h *heartbeat) beat(ctx context.Context) error {
	now := h.clock.Now()
	rtt, err := h.store.ping(ctx)
	if err != nil {
		return err
	}
	running := h.reg.runningSnapshot()
	b := &beatWrite{
		now: now, info: h.info, busy: len(running), concurrency: h.concurrency, quiet: h.isQuiet(),
		rssKB: rssKB(), rtt: rtt, ttl: h.ttl, workFull: h.full,
	}
	for tid, u := range running {
		if h.full || h.written[tid] != u {
			if u.entry == "" {
				u.entry = h.workEntry(u)
			}
			b.workSet = append(b.workSet, tid, u.entry)
		}
	}
	if !h.full {
		for tid := range h.written {
			if _, ok := running[tid]; !ok {
				b.workDel = append(b.workDel, tid)
			}
		}
	}
	b.processed, b.failed = h.stats.take()
	sig, err := h.store.beat(ctx, b)
	if err != nil {
		h.stats.giveBack(b.processed, b.failed)
		h.full = true
		return err
	}
	h.written, h.full = running, false
	h.lastBeat.Store(time.Now().UnixNano())
	if h.metrics != nil {
		// Apart from the beat's MULTI, as Sidekiq: a metrics error must not fail the beat
		// (and count the statistics twice). What fails is not written again.
		if err := h.store.flushMetrics(ctx, h.metrics, now); err != nil {
			h.obs.redisError("metrics", err)
		}
	}
	if n := h.jobLog.takeDropped(); n > 0 {
		h.log.Warn("similar log lines about jobs were dropped (sampling)", zap.Int64("lines", n))
	}
	if sig != "" {
		h.handleSignal(sig)
	}
	return nil
}

// workEntryMax is the most bytes of a payload a running-job entry keeps. The Busy page
// only shows it; a bigger job's entry carries its identity, its timestamps and the start
// of its arguments.
const workEntryMax = 16 << 10

// workEntry is one running job as the Web UI's Busy page reads it.
type workEntry struct {
	Queue   string `json:"queue"`
	Payload string `json:"payload"`
	RunAt   int64  `json:"run_at"`
}

func (h *heartbeat) workEntry(u *unit) string {
	payload := u.raw
	if len(payload) > workEntryMax {
		payload = string(displayPayload(u.job, len(u.raw)))
	}
	raw, _ := marshalNoEscape(workEntry{Queue: h.names[u.q], Payload: payload, RunAt: u.startedAt.Unix()})
	return string(raw)
}

// displayPayload is a bounded stand-in for a payload too big to copy: its identifying
// fields cut to 1 KB each, and as its only argument the start of its arguments' JSON.
func displayPayload(job *Job, size int) []byte {
	if job == nil {
		return []byte(`{"class":"Ferry::InvalidPayload","args":[]}`)
	}
	short := &Job{
		Class: logcap.Cut(job.Class, 1024), JID: logcap.Cut(job.JID, 1024), Queue: logcap.Cut(job.Queue, 1024),
		Wrapped: logcap.Cut(job.Wrapped, 1024), Retry: job.Retry, CreatedAt: job.CreatedAt, EnqueuedAt: job.EnqueuedAt,
		RetryCount: job.RetryCount, FailedAt: job.FailedAt,
	}
	args := logcap.Cut(string(job.Args), workEntryMax/2)
	short.Args = jsonwire.AppendString([]byte{'['}, args)
	short.Args = append(short.Args, ']')
	_ = short.Set("ferry_truncated", size)
	return short.AppendJSON(nil, TimeSeconds)
}

func (h *heartbeat) handleSignal(sig string) {
	switch sig {
	case "TSTP", "TERM", "INT":
		h.log.Info("remote signal " + sig)
		h.onSignal(sig)
	case "TTIN":
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		h.log.Info("remote signal TTIN: goroutine dump", zap.String("goroutines", string(buf[:n])))
	default:
		h.log.Info("ignoring unknown remote signal", logcap.String("signal", sig))
	}
}

// rssKB reads the resident set size from /proc (0 where there is none).
func rssKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
