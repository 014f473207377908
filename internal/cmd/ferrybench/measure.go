package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchEnv is what every drain of a `run` shares.
type benchEnv struct {
	rdb      *redis.Client // the flushed database
	url      string        // its URL, for the children
	rubyFile string        // rubyWorker, written to a temporary file
	o        runOptions
}

// sample is one drain by one worker: what it cost the worker and Redis.
type sample struct {
	Jobs      int           // jobs pre-loaded
	Ran       int64         // jobs the worker's processes counted (more than Jobs: some ran twice)
	Elapsed   time.Duration // first job's start to last job's end
	Redis     redisCost     // from the workers' launch to the end of the drain
	Busy      redisCost     // from the first job's start to the end of the drain
	WorkerCPU time.Duration // user+sys of the worker's processes over the drain, summed
	PeakRSS   int64         // kB, VmHWM, the largest of the worker's processes
}

func (s sample) rate() float64 { return perSecond(float64(s.Jobs), s.Elapsed) }

func perSecond(x float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return x / d.Seconds()
}

// redisPerJob is Redis CPU per job, µs.
func (s sample) redisPerJob() float64 { return usPerJob(s.Redis.CPU, s.Jobs) }

// redisUtil is Redis CPU over wall time from the first job's start to the end of the
// drain: 1 is one core fully busy.
func (s sample) redisUtil() float64 {
	if s.Busy.Wall <= 0 {
		return 0
	}
	return s.Busy.CPU.Seconds() / s.Busy.Wall.Seconds()
}

func (s sample) cmdsPerJob() float64 {
	all, _ := s.Redis.calls()
	return float64(all) / float64(max(s.Jobs, 1))
}

func (s sample) scriptsPerJob() float64 {
	_, sc := s.Redis.calls()
	return float64(sc) / float64(max(s.Jobs, 1))
}

// cpuPerJob is the worker's CPU per job, µs.
func (s sample) cpuPerJob() float64 { return usPerJob(s.WorkerCPU, s.Jobs) }

// jobsPerCPUSecond is jobs per second of worker CPU: jobs/s per core the worker keeps busy.
func (s sample) jobsPerCPUSecond() float64 { return perSecond(float64(s.Jobs), s.WorkerCPU) }

func usPerJob(d time.Duration, jobs int) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(max(jobs, 1))
}

// procState is what the protocol has told about one worker process.
type procState struct {
	started  bool
	start    time.Time
	cpu0     cpuTime
	count    int64
	last     time.Time
	reported bool
	cpu1     cpuTime
}

const (
	drainTimeout  = 10 * time.Minute
	stallTimeout  = 2 * time.Minute // with no protocol line at all (a worker hung, or the jobs vanished)
	reportTimeout = 10 * time.Second
	stopGrace     = 15 * time.Second
)

// measure pre-loads p, starts w's processes on it and measures the drain: the workers'
// time and CPU from the first job's start until the processes have counted p.n jobs;
// Redis's CPU and commands from their launch (so a first fetch that takes many jobs is
// counted; the Redis work of a start-up is small beside a drain) until Redis has gone
// quiet after the last job, and its utilisation from the first job's start.
func measure(ctx context.Context, e *benchEnv, w workerSpec, p jobPlan) (sample, error) {
	if err := preload(ctx, e.rdb, e.url, p); err != nil {
		return sample{}, err
	}
	snap0, err := takeRedisSnapshot(ctx, e.rdb)
	if err != nil {
		return sample{}, err
	}
	events := make(chan childEvent, 64)
	exited := make(chan int, w.processes())
	kids := make([]*child, 0, w.processes())
	defer func() {
		for _, k := range kids {
			k.stop(stopGrace)
		}
	}()
	for i := range w.processes() {
		cmd, err := w.command(e)
		if err != nil {
			return sample{}, err
		}
		k, err := startChild(i, w.name(e.o), cmd, events)
		if err != nil {
			return sample{}, err
		}
		kids = append(kids, k)
		go func() { <-k.exited; exited <- i }()
	}
	st := make([]procState, len(kids))
	var snapA redisSnapshot
	haveA := false
	total := func() (n int64) {
		for _, s := range st {
			n += s.count
		}
		return n
	}
	apply := func(ev childEvent) error {
		s := &st[ev.i]
		switch ev.msg.Kind {
		case "start":
			s.started, s.start = true, ev.msg.At
			if ev.msg.HasCPU {
				s.cpu0 = ev.msg.CPU
			} else { // Ruby: read its CPU first, it runs on
				cpu, err := procCPU(kids[ev.i].pid())
				if err != nil {
					return err
				}
				s.cpu0 = cpu
			}
			if !haveA {
				var err error
				if snapA, err = takeRedisSnapshot(ctx, e.rdb); err != nil {
					return err
				}
				haveA = true
			}
		case "count":
			s.count, s.last = ev.msg.Count, ev.msg.At
		case "report":
			s.count, s.last, s.reported = ev.msg.Count, ev.msg.At, true
			if ev.msg.HasCPU {
				s.cpu1 = ev.msg.CPU
			}
		}
		return nil
	}
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	stall := time.NewTicker(stallTimeout)
	defer stall.Stop()
	progressed := false
	for total() < int64(p.n) {
		select {
		case ev := <-events:
			if err := apply(ev); err != nil {
				return sample{}, err
			}
			progressed = true
		case <-stall.C:
			if !progressed {
				left, _ := e.rdb.LLen(ctx, "queue:default").Result()
				return sample{}, fmt.Errorf("no progress in %v: %d of %d jobs counted, queue:default holds %d: %s",
					stallTimeout, total(), p.n, left, kids[0].describe())
			}
			progressed = false
		case i := <-exited:
			return sample{}, fmt.Errorf("worker exited during the drain: %s", kids[i].describe())
		case <-deadline.C:
			return sample{}, fmt.Errorf("%d of %d jobs ran in %v", total(), p.n, drainTimeout)
		case <-ctx.Done():
			return sample{}, ctx.Err()
		}
	}
	// Ruby's CPU, read now: it is idle from here on.
	for i, k := range kids {
		if w.kind == kindRuby && st[i].started {
			cpu, err := procCPU(k.pid())
			if err != nil {
				return sample{}, err
			}
			st[i].cpu1 = cpu
		}
	}
	snapB, infos, err := quietSnapshot(ctx, e.rdb)
	if err != nil {
		return sample{}, err
	}
	for _, k := range kids {
		if err := k.ask("report"); err != nil {
			return sample{}, fmt.Errorf("asking for a report: %w: %s", err, k.describe())
		}
	}
	reportBy := time.After(reportTimeout)
	for i := 0; i < len(kids); {
		if st[i].reported {
			i++
			continue
		}
		select {
		case ev := <-events:
			if err := apply(ev); err != nil {
				return sample{}, err
			}
		case <-reportBy:
			return sample{}, fmt.Errorf("no report within %v: %s", reportTimeout, kids[i].describe())
		}
	}
	s := sample{
		Jobs:  p.n,
		Redis: redisDelta(snap0, snapB, map[string]int64{"info": int64(2 + infos)}),
		Busy:  redisDelta(snapA, snapB, map[string]int64{"info": int64(1 + infos)}),
	}
	var first, last time.Time
	for i, k := range kids {
		ps := st[i]
		s.Ran += ps.count
		if rss := peakRSS(k.pid()); rss > s.PeakRSS {
			s.PeakRSS = rss
		}
		if !ps.started {
			continue // took no job: its CPU is not the drain's
		}
		s.WorkerCPU += ps.cpu1.sub(ps.cpu0).total()
		if first.IsZero() || ps.start.Before(first) {
			first = ps.start
		}
		if ps.last.After(last) {
			last = ps.last
		}
	}
	s.Elapsed = last.Sub(first)
	if left := e.rdb.LLen(ctx, "queue:default").Val(); left != 0 {
		return s, fmt.Errorf("%d jobs counted but queue:default still holds %d", s.Ran, left)
	}
	return s, nil
}

// quietSnapshot takes INFO every 10 ms until two in a row show no command but INFO, so
// the acknowledgements of the last jobs are in, and returns the first of the two with the
// number of its own INFO calls that one counts (an INFO is counted by the next one).
func quietSnapshot(ctx context.Context, rdb *redis.Client) (redisSnapshot, int, error) {
	prev, err := takeRedisSnapshot(ctx, rdb)
	if err != nil {
		return prev, 0, err
	}
	infos := 0
	for range 50 {
		time.Sleep(10 * time.Millisecond)
		next, err := takeRedisSnapshot(ctx, rdb)
		if err != nil {
			return prev, 0, err
		}
		if quiet(prev, next) {
			return prev, infos, nil
		}
		prev = next
		infos++
	}
	return prev, infos, nil // never quiet (idle fetches of a big fleet): the last one will do
}

// quiet tells whether b counts no more calls than a but one INFO.
func quiet(a, b redisSnapshot) bool {
	for name, sb := range b.Commands {
		want := a.Commands[name].Calls
		if name == "info" {
			want++
		}
		if sb.Calls > want {
			return false
		}
	}
	return true
}
