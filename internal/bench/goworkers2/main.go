// Command goworkers2 runs github.com/digitalocean/go-workers2 on a Sidekiq queue for
// ferrybench, so the most used Go peer is measured beside Ruby Sidekiq and Ferry on the
// same Redis in the same sitting.
//
// It is its own module: go-workers2 is not served by the Go module proxy, so go.mod
// replaces it with a local checkout at ./src (a symlink or a clone, ignored by git). Build
// it with `make goworkers2 GOWORKERS2_SRC=/path/to/go-workers2` from the repository root,
// or by hand:
//
//	ln -sfn /path/to/go-workers2 internal/bench/goworkers2/src
//	cd internal/bench/goworkers2 && go build -o ../../../bin/goworkers2-bench .
//
// Then pass the binary to `ferrybench run -goworkers2 bin/goworkers2-bench`. BENCHMARKS.md
// says how the figures were taken.
//
// The worker runs every job of its queue: a job whose class is SleepJob sleeps args[1]
// milliseconds (the I/O-bound workload), any other job does nothing. It speaks
// ferrybench's child protocol on stdout and stdin (see internal/cmd/ferrybench/child.go):
//
//	start <unix ns> <user µs> <sys µs>    written once, as the first job starts
//	count <jobs done> <unix ns>           every 10 ms while the count changes
//	report <jobs done> <unix ns> <user µs> <sys µs> <max RSS kB>   answer to "report"
//
// and stops (go-workers2's Manager.Stop, which lets running jobs finish) when stdin closes
// or on SIGTERM.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	workers "github.com/digitalocean/go-workers2"
	"github.com/go-redis/redis/v8"
)

func main() {
	url := flag.String("redis", "redis://127.0.0.1:6379/14", "Redis URL")
	conc := flag.Int("c", 10, "concurrency (go-workers2 task runners on the queue)")
	pool := flag.Int("pool", 30, "Redis connection pool size")
	queue := flag.String("q", "default", "queue to work")
	mids := flag.String("middleware", "retry,stats", "middleware chain: \"default\" (log, retry, stats; logs discarded), \"retry,stats\" or \"none\"")
	flag.Parse()
	if err := run(*url, *conc, *pool, *queue, *mids); err != nil {
		fmt.Fprintln(os.Stderr, "goworkers2:", err)
		os.Exit(1)
	}
}

func run(url string, conc, pool int, queue, mids string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	logger := log.New(io.Discard, "", 0)
	mgr, err := workers.NewManager(workers.Options{
		ServerAddr: opt.Addr,
		Database:   opt.DB,
		Password:   opt.Password,
		PoolSize:   pool,
		ProcessID:  fmt.Sprint(os.Getpid()),
		Logger:     logger,
	})
	if err != nil {
		return err
	}
	var chain []workers.MiddlewareFunc
	switch mids {
	case "default":
		chain = workers.DefaultMiddlewares()
	case "retry,stats":
		chain = []workers.MiddlewareFunc{workers.RetryMiddleware, workers.StatsMiddleware}
	case "none":
		chain = []workers.MiddlewareFunc{workers.NopMiddleware}
	default:
		return fmt.Errorf("unknown -middleware %q", mids)
	}
	p := newProgress(os.Stdout)
	mgr.AddWorker(queue, conc, func(m *workers.Msg) error {
		p.started()
		if m.Class() == "SleepJob" {
			if ms, err := m.Args().GetIndex(1).Int(); err == nil && ms > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
		}
		p.finished()
		return nil
	}, chain...)
	stopTicker := p.tick(10 * time.Millisecond)
	defer stopTicker()
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "report" {
				p.report()
			}
		}
		mgr.Stop()
	}()
	mgr.Run() // returns after Stop (stdin closed) or SIGTERM
	return nil
}

// progress counts finished jobs and writes the child protocol's lines.
type progress struct {
	mu      sync.Mutex // serialises writes
	w       io.Writer
	once    sync.Once
	done    atomic.Int64
	lastEnd atomic.Int64 // unix ns of the latest finished job
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) started() {
	p.once.Do(func() {
		u, s, _ := rusage()
		p.line("start %d %d %d", time.Now().UnixNano(), u, s)
	})
}

func (p *progress) finished() {
	p.lastEnd.Store(time.Now().UnixNano())
	p.done.Add(1)
}

func (p *progress) line(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", a...)
}

func (p *progress) report() {
	u, s, rss := rusage()
	p.line("report %d %d %d %d %d", p.done.Load(), p.lastEnd.Load(), u, s, rss)
}

// tick writes a count line every d while the count changes.
func (p *progress) tick(d time.Duration) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if n := p.done.Load(); n != last {
					last = n
					p.line("count %d %d", n, p.lastEnd.Load())
				}
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

// rusage returns this process's user and system CPU in µs and its peak RSS in kB.
func rusage() (user, sys, maxRSS int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, 0
	}
	return ru.Utime.Sec*1e6 + int64(ru.Utime.Usec), ru.Stime.Sec*1e6 + int64(ru.Stime.Usec), ru.Maxrss
}
