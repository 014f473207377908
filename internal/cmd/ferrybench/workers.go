package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// workerKind is which implementation a worker is.
type workerKind int

const (
	kindRuby workerKind = iota
	kindGoWorkers2
	kindFerry
)

// workerSpec is one worker configuration measured by `run`: a kind, its concurrency and
// how many processes of it share the queue.
type workerSpec struct {
	kind  workerKind
	conc  int
	procs int // processes on the queue; 0 or 1 means one
	pool  int // go-workers2's Redis pool size
}

// name labels the worker in reports. Ferry's label keeps the words of the first versions
// of this tool ("Ferry (reliable fetch)").
func (w workerSpec) name(o runOptions) string {
	var s string
	switch w.kind {
	case kindRuby:
		s = fmt.Sprintf("Ruby sidekiq 6.4.1 -c %d", w.conc)
	case kindGoWorkers2:
		s = fmt.Sprintf("go-workers2 pool %d -c %d", w.pool, w.conc)
	case kindFerry:
		s = "Ferry (reliable fetch)" + instrumented(o) + fmt.Sprintf(" -c %d", w.conc)
	}
	if w.procs > 1 {
		s += fmt.Sprintf(" ×%d processes", w.procs)
	}
	return s
}

func (w workerSpec) processes() int { return max(w.procs, 1) }

// command builds the command of one process of w.
func (w workerSpec) command(e *benchEnv) (*exec.Cmd, error) {
	switch w.kind {
	case kindRuby:
		bin, err := exec.LookPath("sidekiq")
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-r", e.rubyFile, "-c", fmt.Sprint(w.conc), "-q", "default", "-t", "5")
		cmd.Dir = filepath.Dir(e.rubyFile)
		cmd.Env = append(os.Environ(), "REDIS_URL="+e.url)
		return cmd, nil
	case kindGoWorkers2:
		if e.o.goWorkers2 == "" {
			return nil, fmt.Errorf("no go-workers2 binary (-goworkers2)")
		}
		return exec.Command(e.o.goWorkers2, "-redis", e.url, "-c", fmt.Sprint(w.conc), "-pool", fmt.Sprint(w.pool)), nil
	default:
		return ferryChildCommand(e.url, w.conc, e.o.metrics, e.o.tracing)
	}
}

// rubyWorker is the file the sidekiq binary loads (-r): NoopJob and SleepJob, and the child
// protocol of child.go. Ruby's CPU is read by ferrybench from /proc, so its lines carry no
// CPU figures.
const rubyWorker = `require "sidekiq"
Sidekiq.logger.level = Logger::WARN
$stdout.sync = true

module FerryBench
  LOCK = Mutex.new
  @done = 0
  @last = 0
  @started = false

  def self.now_ns
    Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)
  end

  def self.started
    return if @started
    LOCK.synchronize do
      next if @started
      @started = true
      $stdout.write("start #{now_ns}\n")
    end
  end

  def self.finished
    t = now_ns
    LOCK.synchronize do
      @done += 1
      @last = t
    end
  end

  def self.snapshot
    LOCK.synchronize { [@done, @last] }
  end
end

Thread.new do
  seen = 0
  loop do
    sleep 0.01
    done, last = FerryBench.snapshot
    next if done == seen
    seen = done
    $stdout.write("count #{done} #{last}\n")
  end
end

Thread.new do
  while (line = $stdin.gets)
    next unless line.strip == "report"
    done, last = FerryBench.snapshot
    $stdout.write("report #{done} #{last}\n")
  end
  # stdin closed: ferrybench is stopping this worker, or has died. Either way, stop, so no
  # orphaned worker takes the jobs of whoever uses this database next.
  Process.kill("TERM", Process.pid)
end

class NoopJob
  include Sidekiq::Worker
  def perform(*)
    FerryBench.started
    FerryBench.finished
  end
end

class SleepJob
  include Sidekiq::Worker
  def perform(_i, ms)
    FerryBench.started
    sleep(ms / 1000.0)
    FerryBench.finished
  end
end
`

// jobPlan is what a drain pre-loads into queue:default: n jobs of NoopJob (args [i]) or,
// with sleeps, of SleepJob (args [i, sleeps[i]]: the milliseconds job i waits).
type jobPlan struct {
	n      int
	sleeps []int
}

func (p jobPlan) class() string {
	if p.sleeps != nil {
		return "SleepJob"
	}
	return "NoopJob"
}

// ioSleeps is the I/O-bound workload's waits: n draws, uniform over 5..20 ms, from a PCG
// seeded with seed, so every worker gets the same sequence.
func ioSleeps(n int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]int, n)
	for i := range out {
		out[i] = 5 + r.IntN(16)
	}
	return out
}

const preloadTimeout = 5 * time.Minute

// preload empties the database and pushes the plan's jobs with Ruby's push_bulk (in slices
// of 1,000, Sidekiq 7's default batch), as a Rails app would.
func preload(ctx context.Context, rdb *redis.Client, url string, p jobPlan) error {
	ctx, cancel := context.WithTimeout(ctx, preloadTimeout)
	defer cancel()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	script := fmt.Sprintf(`require "sidekiq"
ms = $stdin.read.split.map(&:to_i)
(0...%d).each_slice(1000) do |s|
  Sidekiq::Client.push_bulk("class" => %q, "args" => s.map { |i| ms.empty? ? [i] : [i, ms[i]] })
end`, p.n, p.class())
	cmd := exec.CommandContext(ctx, "ruby", "-e", script)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	var in strings.Builder
	for _, ms := range p.sleeps {
		fmt.Fprintln(&in, ms)
	}
	cmd.Stdin = strings.NewReader(in.String())
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("push_bulk: %w: %s", err, b)
	}
	if got := rdb.LLen(ctx, "queue:default").Val(); got != int64(p.n) {
		return fmt.Errorf("push_bulk left %d jobs in queue:default, want %d", got, p.n)
	}
	return nil
}
