package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/sidekiq"
)

// cmdRun implements `ferrybench run`: workers measured one after the other, in rounds, on
// the same Redis, each draining the same jobs that Ruby's push_bulk pre-loaded.
func cmdRun(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	url := redisFlag(fs)
	server := fs.String("redis-server", "", "start this redis-server binary on a free loopback port and measure there (-redis is then unused): its INFO figures hold only the measured workers' work")
	n := fs.Int("n", 100000, "jobs to pre-load for each worker (no-op and rss workloads)")
	conc := fs.Int("c", 10, "concurrency of every worker of the no-op workload, and of each fleet process")
	latN := fs.Int("latency-n", 1000, "jobs pushed one at a time to an idle Ferry server for the latency figures (no-op workload; 0: none)")
	withRuby := fs.Bool("ruby", true, "also time the real sidekiq binary")
	withMetrics := fs.Bool("metrics", false, "attach promferry metrics to the Ferry server and scrape them (and the Redis stats collector) every second")
	withTracing := fs.Bool("tracing", false, "trace every Ferry job with package tracing (OpenTelemetry SDK, every span sampled, exported nowhere)")
	rounds := fs.Int("rounds", 1, "rounds: each round drains once with every worker, in turn (A B A B ...)")
	workload := fs.String("workload", "noop", "comma-separated workloads: noop, io, fleet, rss; or issue20 for all four")
	gw2 := fs.String("goworkers2", "", "go-workers2 harness binary (make goworkers2): measured beside Ruby and Ferry in the no-op workload")
	gw2Pool := fs.Int("goworkers2-pool", 30, "go-workers2's Redis pool size")
	ioN := fs.Int("io-n", 20000, "jobs for the io workload")
	ioSeed := fs.Uint64("io-seed", 20, "seed of the io workload's waits")
	ioC := fs.String("io-c", "10,100,1000", "Ferry concurrencies of the io workload")
	ioRubyC := fs.String("io-ruby-c", "10,25", "Ruby concurrencies of the io workload")
	fleetN := fs.Int("fleet-n", 300000, "jobs for the fleet workload")
	fleetProcs := fs.Int("fleet-procs", 3, "Ferry processes of the fleet workload")
	rssC := fs.Int("rss-c", 100, "Ferry concurrency of the rss workload")
	top := fs.Int("top", 5, "commands listed per worker, by calls and by time (-1: none)")
	markdown := fs.Bool("markdown", false, "print the summary tables as Markdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := runOptions{
		jobs: *n, conc: *conc, latencyN: *latN, ruby: *withRuby, metrics: *withMetrics, tracing: *withTracing,
		rounds: *rounds, goWorkers2: *gw2, goWorkers2Pool: *gw2Pool,
		ioJobs: *ioN, ioSeed: *ioSeed, fleetJobs: *fleetN, fleetProcs: *fleetProcs, rssConc: *rssC,
		top: *top, markdown: *markdown,
	}
	var err error
	if o.workloads, err = parseWorkloads(*workload); err != nil {
		return err
	}
	if o.ioConc, err = parseInts(*ioC); err != nil {
		return fmt.Errorf("-io-c: %w", err)
	}
	if o.ioRubyConc, err = parseInts(*ioRubyC); err != nil {
		return fmt.Errorf("-io-ruby-c: %w", err)
	}
	ctx := context.Background()
	if *server != "" {
		r, err := startPrivateRedis(ctx, *server)
		if err != nil {
			return err
		}
		defer r.Close()
		*url = r.URL()
		o.privateRedis = true
	}
	b, err := openBenchRedis(*url)
	if err != nil {
		return err
	}
	defer b.Close()
	return runBench(ctx, b.Client, *url, o, out)
}

// runOptions are run's flags. Zero values mean the defaults of a one-round no-op run.
type runOptions struct {
	jobs, conc, latencyN int
	ruby                 bool
	metrics, tracing     bool // instrument the Ferry server (see instrument)

	rounds         int
	workloads      []string // noop, io, fleet, rss
	goWorkers2     string   // harness binary; "" leaves go-workers2 out
	goWorkers2Pool int
	ioJobs         int
	ioSeed         uint64
	ioConc         []int // Ferry
	ioRubyConc     []int
	fleetJobs      int
	fleetProcs     int
	rssConc        int
	top            int
	markdown       bool
	privateRedis   bool // the Redis was started by ferrybench for this run
}

func (o runOptions) withDefaults() runOptions {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.jobs, 100000)
	def(&o.conc, 10)
	def(&o.rounds, 1)
	def(&o.goWorkers2Pool, 30)
	def(&o.ioJobs, 20000)
	def(&o.fleetJobs, 300000)
	def(&o.fleetProcs, 3)
	def(&o.rssConc, 100)
	if len(o.workloads) == 0 {
		o.workloads = []string{"noop"}
	}
	if o.top == 0 {
		o.top = 5
	}
	if o.ioSeed == 0 {
		o.ioSeed = 20
	}
	if o.ioConc == nil {
		o.ioConc = []int{10, 100, 1000}
	}
	if o.ioRubyConc == nil {
		o.ioRubyConc = []int{10, 25}
	}
	return o
}

var allWorkloads = []string{"noop", "io", "fleet", "rss"}

func parseWorkloads(s string) ([]string, error) {
	var out []string
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		switch {
		case w == "issue20" || w == "all":
			out = append(out, allWorkloads...)
		case slices.Contains(allWorkloads, w):
			out = append(out, w)
		default:
			return nil, fmt.Errorf("unknown workload %q (want noop, io, fleet, rss or issue20)", w)
		}
	}
	slices.Sort(out) // run them in a fixed order: allWorkloads'
	out = slices.Compact(out)
	slices.SortFunc(out, func(a, b string) int { return slices.Index(allWorkloads, a) - slices.Index(allWorkloads, b) })
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// workloadPlan is a workload's jobs and workers.
type workloadPlan struct {
	name  string
	title string
	plan  jobPlan
	specs []workerSpec
}

// plans turns the options into the workloads to run, in order.
func plans(o runOptions) []workloadPlan {
	var out []workloadPlan
	for _, w := range o.workloads {
		switch w {
		case "noop":
			p := workloadPlan{name: w, plan: jobPlan{n: o.jobs},
				title: fmt.Sprintf("%d no-op jobs pre-loaded by Ruby push_bulk, concurrency %d", o.jobs, o.conc)}
			if o.ruby {
				p.specs = append(p.specs, workerSpec{kind: kindRuby, conc: o.conc})
			}
			if o.goWorkers2 != "" {
				p.specs = append(p.specs, workerSpec{kind: kindGoWorkers2, conc: o.conc, pool: o.goWorkers2Pool})
			}
			p.specs = append(p.specs, workerSpec{kind: kindFerry, conc: o.conc})
			out = append(out, p)
		case "io":
			p := workloadPlan{name: w, plan: jobPlan{n: o.ioJobs, sleeps: ioSleeps(o.ioJobs, o.ioSeed)},
				title: fmt.Sprintf("io: %d jobs pre-loaded by Ruby push_bulk, each waiting 5–20 ms (uniform, seed %d, the same for every worker)", o.ioJobs, o.ioSeed)}
			if o.ruby {
				for _, c := range o.ioRubyConc {
					p.specs = append(p.specs, workerSpec{kind: kindRuby, conc: c})
				}
			}
			for _, c := range o.ioConc {
				p.specs = append(p.specs, workerSpec{kind: kindFerry, conc: c})
			}
			out = append(out, p)
		case "fleet":
			out = append(out, workloadPlan{name: w, plan: jobPlan{n: o.fleetJobs},
				title: fmt.Sprintf("fleet: %d no-op jobs, one Ferry process against %d on the same Redis, concurrency %d each", o.fleetJobs, o.fleetProcs, o.conc),
				specs: []workerSpec{{kind: kindFerry, conc: o.conc}, {kind: kindFerry, conc: o.conc, procs: o.fleetProcs}}})
		case "rss":
			out = append(out, workloadPlan{name: w, plan: jobPlan{n: o.jobs},
				title: fmt.Sprintf("rss: %d no-op jobs, Ferry at concurrency %d", o.jobs, o.rssConc),
				specs: []workerSpec{{kind: kindFerry, conc: o.rssConc}}})
		}
	}
	return out
}

// runBench measures on rdb, the database url names, which it flushes.
func runBench(ctx context.Context, rdb *redis.Client, url string, o runOptions, out io.Writer) error {
	o = o.withDefaults()
	dir, err := os.MkdirTemp("", "ferrybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &benchEnv{rdb: rdb, url: url, rubyFile: filepath.Join(dir, "worker.rb"), o: o}
	if err := os.WriteFile(e.rubyFile, []byte(rubyWorker), 0o644); err != nil {
		return err
	}
	if err := printRedisHeader(ctx, out, rdb, url, o.privateRedis); err != nil {
		return err
	}
	results := map[string]*workloadResult{}
	for _, wp := range plans(o) {
		fmt.Fprintf(out, "\n== %s, %d round(s), workers interleaved ==\n", wp.title, o.rounds)
		r := &workloadResult{title: wp.title, specs: wp.specs, samples: make([][]sample, len(wp.specs))}
		for _, s := range wp.specs {
			r.names = append(r.names, s.name(o))
		}
		for round := 1; round <= o.rounds; round++ {
			for w, spec := range wp.specs {
				s, err := measure(ctx, e, spec, wp.plan)
				if err != nil {
					return fmt.Errorf("%s, %s, round %d: %w", wp.name, r.names[w], round, err)
				}
				r.samples[w] = append(r.samples[w], s)
				printRound(out, round, r.names[w], s)
			}
		}
		printSummary(out, r, o.rounds, o.markdown)
		printWorkloadRatios(out, wp.name, r, o)
		printTopCommands(out, r, o.top)
		results[wp.name] = r
	}
	if results["noop"] != nil && o.latencyN > 0 {
		p50, p99, err := idleLatency(ctx, rdb, o.latencyN, o)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		fmt.Fprintf(out, "\nFerry idle enqueue-to-start latency over %d jobs: p50 %v, p99 %v\n", o.latencyN, p50.Round(time.Microsecond), p99.Round(time.Microsecond))
	}
	printIssue20(out, results, o)
	return nil
}

// instrumented names what is attached to the Ferry server, for the report.
func instrumented(o runOptions) string {
	switch {
	case o.metrics && o.tracing:
		return " +metrics +tracing"
	case o.metrics:
		return " +metrics"
	case o.tracing:
		return " +tracing"
	}
	return ""
}

// printRedisHeader says which Redis the figures come from.
func printRedisHeader(ctx context.Context, out io.Writer, rdb *redis.Client, url string, private bool) error {
	s, err := takeRedisSnapshot(ctx, rdb)
	if err != nil {
		return err
	}
	where := strings.TrimPrefix(url, "redis://")
	if private {
		fmt.Fprintf(out, "Redis %s at %s, started by ferrybench for this run (pid %d)\n", s.Version, where, s.PID)
	} else {
		fmt.Fprintf(out, "Redis %s at %s, shared: its CPU and command counts include the work of its other clients (%d connected now, ferrybench's included); -redis-server gives a private one\n", s.Version, where, s.Clients)
	}
	return nil
}

// printWorkloadRatios prints the comparisons each workload is for.
func printWorkloadRatios(out io.Writer, name string, r *workloadResult, o runOptions) {
	fmt.Fprintln(out)
	switch name {
	case "noop":
		f := r.index(kindFerry, o.conc, 1)
		printRatio(out, r, "Ferry / Ruby", f, r.index(kindRuby, o.conc, 1))
		printRatio(out, r, "Ferry / go-workers2", f, r.index(kindGoWorkers2, o.conc, 1))
	case "io":
		for _, fc := range o.ioConc {
			for _, rc := range o.ioRubyConc {
				printRatio(out, r, fmt.Sprintf("Ferry -c %d / Ruby -c %d", fc, rc), r.index(kindFerry, fc, 1), r.index(kindRuby, rc, 1))
			}
		}
		jobsPerCPU := metrics[6]
		for w, name := range r.names {
			fmt.Fprintf(out, "%s: %s jobs per second of worker CPU\n", name, spreadOf(r.values(w, jobsPerCPU)).format(jobsPerCPU.format))
		}
	case "fleet":
		one, many := r.index(kindFerry, o.conc, 1), r.index(kindFerry, o.conc, o.fleetProcs)
		printRatio(out, r, fmt.Sprintf("Ferry ×%d / Ferry ×1", o.fleetProcs), many, one)
		util := metrics[2]
		fmt.Fprintf(out, "Redis CPU during the drain: %s%% of one core with 1 process, %s%% with %d\n",
			spreadOf(r.values(one, util)).format(util.format), spreadOf(r.values(many, util)).format(util.format), o.fleetProcs)
	}
}

// printIssue20 checks the targets of issue 20 against this run's medians.
func printIssue20(out io.Writer, results map[string]*workloadResult, o runOptions) {
	var lines []string
	check := func(what string, got string, met bool) {
		verdict := "not met"
		if met {
			verdict = "met"
		}
		lines = append(lines, fmt.Sprintf("  %-62s %-10s %s", what, got, verdict))
	}
	if r := results["noop"]; r != nil {
		f := r.index(kindFerry, o.conc, 1)
		rpj := spreadOf(r.values(f, metrics[1])).Median
		check(fmt.Sprintf("Redis CPU per job ≤ 2.5 µs (Ferry -c %d, no-op)", o.conc), fmt.Sprintf("%.2f µs", rpj), rpj <= 2.5)
		if rb := r.index(kindRuby, o.conc, 1); rb >= 0 {
			x, _ := r.ratio(f, rb, metrics[0], false)
			check("Ferry ≥ 20× Ruby Sidekiq (jobs/s, medians)", fmt.Sprintf("%.1f×", x), x >= 20)
		}
		if g := r.index(kindGoWorkers2, o.conc, 1); g >= 0 {
			x, _ := r.ratio(f, g, metrics[0], false)
			check("Ferry ≥ 15× go-workers2 (jobs/s, medians)", fmt.Sprintf("%.1f×", x), x >= 15)
		}
	}
	if r := results["rss"]; r != nil {
		mb := spreadOf(r.values(0, metrics[7])).Max
		check(fmt.Sprintf("Ferry peak RSS < 30 MB at concurrency %d (no-op, largest)", o.rssConc), fmt.Sprintf("%.1f MB", mb), mb < 30)
	}
	if r := results["io"]; r != nil {
		if f := r.index(kindFerry, o.rssConc, 1); f >= 0 {
			mb := spreadOf(r.values(f, metrics[7])).Max
			check(fmt.Sprintf("Ferry peak RSS < 30 MB at concurrency %d (io, largest)", o.rssConc), fmt.Sprintf("%.1f MB", mb), mb < 30)
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(out, "\nissue 20 targets, this run:")
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
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
