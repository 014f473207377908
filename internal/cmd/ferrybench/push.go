package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/sidekiq"
)

// pushRate is one way of enqueueing, timed.
type pushRate struct {
	Name    string
	Jobs    int
	Elapsed time.Duration
}

func (p pushRate) perSecond() float64 { return float64(p.Jobs) / p.Elapsed.Seconds() }

// cmdPush implements `ferrybench push`: Go's PushBulk and Push next to Ruby's push_bulk and
// Sidekiq::Client.push, each enqueueing jobs with the same class and args into an empty
// database.
func cmdPush(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	url := redisFlag(fs)
	n := fs.Int("n", 100000, "jobs for the bulk pushes; one-at-a-time pushes use n/10")
	workers := fs.Int("g", 10, "goroutines for Go's one-at-a-time Push")
	withRuby := fs.Bool("ruby", true, "also time Ruby Sidekiq's client")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := openBenchRedis(*url)
	if err != nil {
		return err
	}
	defer b.Close()
	return pushBench(context.Background(), b.Client, *url, pushOptions{jobs: *n, goroutines: *workers, ruby: *withRuby}, out)
}

// pushOptions are push's flags.
type pushOptions struct {
	jobs, goroutines int
	ruby             bool
}

// pushBench measures on rdb, the database url names, which it flushes.
func pushBench(ctx context.Context, rdb *redis.Client, url string, o pushOptions, out io.Writer) error {
	n, workers, withRuby := &o.jobs, &o.goroutines, &o.ruby
	single := max(*n/10, 1)
	var rates []pushRate
	measure := func(name string, jobs int, f func() error) error {
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		el := time.Since(start)
		if got := rdb.LLen(ctx, "queue:default").Val(); got != int64(jobs) {
			return fmt.Errorf("%s: queue holds %d jobs, want %d", name, got, jobs)
		}
		rates = append(rates, pushRate{Name: name, Jobs: jobs, Elapsed: el})
		return nil
	}
	client := sidekiq.NewClient(rdb, nil)
	if err := measure("Go PushBulk", *n, func() error { return goPushBulk(ctx, client, *n) }); err != nil {
		return err
	}
	if err := measure(fmt.Sprintf("Go Push, %d goroutines", *workers), single, func() error {
		return goPushEach(ctx, client, single, *workers)
	}); err != nil {
		return err
	}
	if err := measure("Go Push, 1 goroutine", single, func() error { return goPushEach(ctx, client, single, 1) }); err != nil {
		return err
	}
	if *withRuby {
		for _, r := range []struct {
			name, mode string
			jobs       int
		}{
			{"Ruby push_bulk", "bulk", *n},
			{"Ruby Sidekiq::Client.push", "each", single},
		} {
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				return err
			}
			el, err := rubyPush(ctx, rdb, url, r.mode, r.jobs)
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			rates = append(rates, pushRate{Name: r.name, Jobs: r.jobs, Elapsed: el})
		}
	}
	printPushRates(out, rates)
	return rdb.FlushDB(ctx).Err()
}

func printPushRates(out io.Writer, rates []pushRate) {
	fmt.Fprintf(out, "%-30s %9s %9s %12s\n", "method", "jobs", "seconds", "jobs/s")
	byName := map[string]float64{}
	for _, r := range rates {
		fmt.Fprintf(out, "%-30s %9d %9.3f %12.0f\n", r.Name, r.Jobs, r.Elapsed.Seconds(), r.perSecond())
		byName[r.Name] = r.perSecond()
	}
	if rb := byName["Ruby push_bulk"]; rb > 0 {
		fmt.Fprintf(out, "\nGo PushBulk / Ruby push_bulk: %.1fx\n", byName["Go PushBulk"]/rb)
	}
	if rp := byName["Ruby Sidekiq::Client.push"]; rp > 0 {
		fmt.Fprintf(out, "Go Push (1 goroutine) / Ruby Sidekiq::Client.push: %.1fx\n", byName["Go Push, 1 goroutine"]/rp)
	}
}

func benchArgs(i int) []any { return []any{i, "payload"} }

func goPushBulk(ctx context.Context, c *sidekiq.Client, n int) error {
	all := make([][]any, n)
	for i := range all {
		all[i] = benchArgs(i)
	}
	_, err := c.PushBulk(ctx, "NoopJob", all)
	return err
}

func goPushEach(ctx context.Context, c *sidekiq.Client, n, workers int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if _, err := c.Push(ctx, "NoopJob", benchArgs(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// rubyPush times Ruby's client inside Ruby (boot time excluded) and returns the elapsed
// time it printed.
func rubyPush(ctx context.Context, rdb *redis.Client, url, mode string, n int) (time.Duration, error) {
	script := fmt.Sprintf(`require "sidekiq"
n = %d
t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
if %q == "bulk"
  (0...n).each_slice(1000) { |s| Sidekiq::Client.push_bulk("class" => "NoopJob", "args" => s.map { |i| [i, "payload"] }) }
else
  n.times { |i| Sidekiq::Client.push("class" => "NoopJob", "args" => [i, "payload"]) }
end
puts Process.clock_gettime(Process::CLOCK_MONOTONIC) - t`, n, mode)
	cmd := exec.CommandContext(ctx, "ruby", "-e", script)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, b)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	secs, err := strconv.ParseFloat(lines[len(lines)-1], 64)
	if err != nil {
		return 0, fmt.Errorf("reading Ruby's timing %q: %w", b, err)
	}
	if got := rdb.LLen(ctx, "queue:default").Val(); got != int64(n) {
		return 0, fmt.Errorf("queue holds %d jobs, want %d", got, n)
	}
	return time.Duration(secs * float64(time.Second)), nil
}
