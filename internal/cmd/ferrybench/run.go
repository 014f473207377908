package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/sidekiq"
)

// runReport is what `ferrybench run` measures.
type runReport struct {
	Jobs        int
	Concurrency int
	Ruby        throughput // zero when Ruby was not measured
	Ferry       throughput
	LatencyP50  time.Duration
	LatencyP99  time.Duration
	LatencyN    int
	Metrics     bool
	Tracing     bool
}

// throughput is one worker's result on the pre-loaded queue.
type throughput struct {
	Elapsed time.Duration
	PeakRSS int64 // kB, VmHWM
}

func (t throughput) rate(n int) float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(n) / t.Elapsed.Seconds()
}

// cmdRun implements `ferrybench run`: Ruby Sidekiq 6.4.1 and Ferry, one after the other,
// each draining the same number of no-op jobs that Ruby's push_bulk pre-loaded.
func cmdRun(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	url := redisFlag(fs)
	n := fs.Int("n", 100000, "jobs to pre-load for each worker")
	conc := fs.Int("c", 10, "concurrency of both workers")
	latN := fs.Int("latency-n", 1000, "jobs pushed one at a time to an idle Ferry server for the latency figures")
	withRuby := fs.Bool("ruby", true, "also time the real sidekiq binary")
	withMetrics := fs.Bool("metrics", false, "attach promferry metrics to the Ferry server and scrape them (and the Redis stats collector) every second")
	withTracing := fs.Bool("tracing", false, "trace every Ferry job with package tracing (OpenTelemetry SDK, every span sampled, exported nowhere)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := openBenchRedis(*url)
	if err != nil {
		return err
	}
	defer b.Close()
	return runBench(context.Background(), b.Client, *url, runOptions{jobs: *n, conc: *conc, latencyN: *latN, ruby: *withRuby, metrics: *withMetrics, tracing: *withTracing}, out)
}

// runOptions are run's flags.
type runOptions struct {
	jobs, conc, latencyN int
	ruby                 bool
	metrics, tracing     bool // instrument the Ferry server (see instrument)
}

// runBench measures on rdb, the database url names, which it flushes.
func runBench(ctx context.Context, rdb *redis.Client, url string, o runOptions, out io.Writer) error {
	n, conc, latN, withRuby := &o.jobs, &o.conc, &o.latencyN, &o.ruby
	var err error
	rep := runReport{Jobs: *n, Concurrency: *conc, LatencyN: *latN, Metrics: o.metrics, Tracing: o.tracing}
	if *withRuby {
		if rep.Ruby, err = timeRubySidekiq(ctx, rdb, url, *n, *conc); err != nil {
			return fmt.Errorf("ruby sidekiq: %w", err)
		}
	}
	if rep.Ferry, err = timeFerry(ctx, rdb, url, *n, *conc, o); err != nil {
		return fmt.Errorf("ferry: %w", err)
	}
	if rep.LatencyP50, rep.LatencyP99, err = idleLatency(ctx, rdb, *latN, o); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	printRunReport(out, rep)
	return nil
}

// instrumented names what was attached to the Ferry server, for the report.
func instrumented(r runReport) string {
	switch {
	case r.Metrics && r.Tracing:
		return " +metrics +tracing"
	case r.Metrics:
		return " +metrics"
	case r.Tracing:
		return " +tracing"
	}
	return ""
}

func printRunReport(out io.Writer, r runReport) {
	fmt.Fprintf(out, "%d no-op jobs pre-loaded by Ruby push_bulk, concurrency %d\n\n", r.Jobs, r.Concurrency)
	fmt.Fprintf(out, "%-40s %10s %12s %14s\n", "worker", "seconds", "jobs/s", "peak RSS (MB)")
	if r.Ruby.Elapsed > 0 {
		fmt.Fprintf(out, "%-40s %10.2f %12.0f %14.1f\n", "Ruby sidekiq 6.4.1", r.Ruby.Elapsed.Seconds(), r.Ruby.rate(r.Jobs), float64(r.Ruby.PeakRSS)/1024)
	}
	fmt.Fprintf(out, "%-40s %10.2f %12.0f %14.1f\n", "Ferry (reliable fetch)"+instrumented(r), r.Ferry.Elapsed.Seconds(), r.Ferry.rate(r.Jobs), float64(r.Ferry.PeakRSS)/1024)
	if r.Ruby.Elapsed > 0 {
		fmt.Fprintf(out, "\nFerry / Ruby: %.1fx\n", r.Ferry.rate(r.Jobs)/r.Ruby.rate(r.Jobs))
	}
	fmt.Fprintf(out, "Ferry idle enqueue-to-start latency over %d jobs: p50 %v, p99 %v\n", r.LatencyN, r.LatencyP50.Round(time.Microsecond), r.LatencyP99.Round(time.Microsecond))
}

// preloadWithRuby empties the database and pushes n NoopJob jobs with Ruby's push_bulk.
func preloadWithRuby(ctx context.Context, rdb *redis.Client, url string, n int) error {
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	script := fmt.Sprintf(`require "sidekiq"
(0...%d).each_slice(1000) { |s| Sidekiq::Client.push_bulk("class" => "NoopJob", "args" => s.map { |i| [i] }) }`, n)
	cmd := exec.CommandContext(ctx, "ruby", "-e", script)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("push_bulk: %w: %s", err, b)
	}
	if got := rdb.LLen(ctx, "queue:default").Val(); got != int64(n) {
		return fmt.Errorf("push_bulk left %d jobs in queue:default, want %d", got, n)
	}
	return nil
}

const rubyNoopJob = `require "sidekiq"
Sidekiq.logger.level = Logger::WARN
class NoopJob
  include Sidekiq::Worker
  def perform(i); end
end
`

// timeRubySidekiq starts `sidekiq -c conc` on the pre-loaded queue. The clock runs from the
// first job taken until the queue is empty (the at most conc jobs still in its threads then
// are not waited for, which favours Ruby slightly); stat:processed is then checked.
func timeRubySidekiq(ctx context.Context, rdb *redis.Client, url string, n, conc int) (throughput, error) {
	if err := preloadWithRuby(ctx, rdb, url, n); err != nil {
		return throughput{}, err
	}
	bin, err := exec.LookPath("sidekiq")
	if err != nil {
		return throughput{}, err
	}
	dir, err := os.MkdirTemp("", "ferrybench")
	if err != nil {
		return throughput{}, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "noop.rb")
	if err := os.WriteFile(file, []byte(rubyNoopJob), 0o644); err != nil {
		return throughput{}, err
	}
	cmd := exec.Command(bin, "-r", file, "-c", fmt.Sprint(conc), "-q", "default", "-t", "5")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return throughput{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	var start time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return throughput{}, fmt.Errorf("sidekiq exited early: %v", err)
		default:
		}
		left := rdb.LLen(ctx, "queue:default").Val()
		if start.IsZero() && left < int64(n) {
			start = time.Now()
		}
		if left == 0 {
			res := throughput{Elapsed: time.Since(start), PeakRSS: peakRSS(cmd.Process.Pid)}
			return res, waitProcessed(ctx, rdb, n)
		}
		time.Sleep(time.Millisecond)
	}
	return throughput{}, errors.New("queue not drained within 10 minutes")
}

// waitProcessed waits for Sidekiq's stat:processed (flushed with its heartbeat) to reach n.
func waitProcessed(ctx context.Context, rdb *redis.Client, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got, _ := rdb.Get(ctx, "stat:processed").Int(); got >= n {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, _ := rdb.Get(ctx, "stat:processed").Int()
	return fmt.Errorf("stat:processed is %d after the queue emptied, want %d", got, n)
}

// timeFerry runs a Ferry server with a no-op handler on the pre-loaded queue, timed from
// Start until the handler has run n times.
func timeFerry(ctx context.Context, rdb *redis.Client, url string, n, conc int, o runOptions) (throughput, error) {
	if err := preloadWithRuby(ctx, rdb, url, n); err != nil {
		return throughput{}, err
	}
	var done atomic.Int64
	all := make(chan struct{})
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: conc})
	stopInstr := instrument(srv, rdb, o)
	defer stopInstr()
	srv.Handle("NoopJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		if done.Add(1) == int64(n) {
			close(all)
		}
		return nil
	}))
	start := time.Now()
	if err := srv.Start(ctx); err != nil {
		return throughput{}, err
	}
	defer stopServer(srv)
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return throughput{}, fmt.Errorf("only %d of %d jobs ran in 10 minutes", done.Load(), n)
	}
	return throughput{Elapsed: time.Since(start), PeakRSS: peakRSS(os.Getpid())}, nil
}

// idleLatency pushes latN jobs one at a time, 2 ms apart, to an idle server and returns the
// p50 and p99 of enqueued_at-to-handler-start.
func idleLatency(ctx context.Context, rdb *redis.Client, latN int, o runOptions) (p50, p99 time.Duration, err error) {
	lat := make(chan time.Duration, latN)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 10, Queues: []string{"latency"}})
	stopInstr := instrument(srv, rdb, o)
	defer stopInstr()
	srv.Handle("LatencyJob", sidekiq.HandlerFunc(func(_ context.Context, j *sidekiq.Job) error {
		lat <- time.Since(j.EnqueuedAt)
		return nil
	}))
	if err := srv.Start(ctx); err != nil {
		return 0, 0, err
	}
	defer stopServer(srv)
	c := sidekiq.NewClient(rdb, nil)
	time.Sleep(200 * time.Millisecond) // let the fetchers block in Redis: the server is idle
	all := make([]time.Duration, 0, latN)
	for range latN {
		if _, err := c.Push(ctx, "LatencyJob", nil, sidekiq.Queue("latency")); err != nil {
			return 0, 0, err
		}
		select {
		case d := <-lat:
			all = append(all, d)
		case <-time.After(10 * time.Second):
			return 0, 0, errors.New("a pushed job did not start within 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	slices.Sort(all)
	return all[len(all)/2], all[len(all)*99/100], nil
}

func stopServer(srv *sidekiq.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Stop(ctx)
}
