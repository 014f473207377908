package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/sidekiq"
)

// childEnv, set to "ferry" in a process's environment, makes ferrybench (or its test
// binary) run as the Ferry worker child instead of its command line: `run` measures Ferry
// in a process of its own, as it does Ruby and go-workers2, so each worker's CPU and peak
// RSS are its own.
const childEnv = "FERRYBENCH_CHILD"

// ferryChildCommand is the command that runs a Ferry worker child.
func ferryChildCommand(url string, conc int, metrics, tracing bool) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-redis", url, "-c", fmt.Sprint(conc)}
	if metrics {
		args = append(args, "-metrics")
	}
	if tracing {
		args = append(args, "-tracing")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=ferry")
	return cmd, nil
}

// ferryChild is the Ferry worker child: a Server with default settings but Concurrency (reliable
// fetch, stats and heartbeats on) running NoopJob (nothing) and SleepJob (sleeps args[1] ms),
// speaking the protocol of child.go on stdout, until stdin closes or SIGTERM.
func ferryChild(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("ferry child", flag.ContinueOnError)
	url := fs.String("redis", defaultRedisURL(), "Redis URL")
	conc := fs.Int("c", 10, "concurrency")
	metrics := fs.Bool("metrics", false, "attach promferry metrics, scraped every second")
	tracing := fs.Bool("tracing", false, "trace every job (OpenTelemetry SDK, exported nowhere)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt, err := redis.ParseURL(*url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: *conc})
	stopInstr := instrument(srv, rdb, runOptions{metrics: *metrics, tracing: *tracing})
	defer stopInstr()
	p := newProgress(stdout)
	srv.Handle("NoopJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error {
		p.started()
		p.finished()
		return nil
	}))
	srv.Handle("SleepJob", sidekiq.HandlerFunc(func(ctx context.Context, j *sidekiq.Job) error {
		p.started()
		var i, ms int64
		if err := j.DecodeArgs(&i, &ms); err == nil && ms > 0 {
			t := time.NewTimer(time.Duration(ms) * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		p.finished()
		return nil
	}))
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	stopTick := p.tick(10 * time.Millisecond)
	go p.serveStdin(stdin, cancel)
	<-ctx.Done()
	stopServer(srv)
	stopTick()
	return nil
}
