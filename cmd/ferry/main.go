// Command ferry operates a Sidekiq installation, Ruby and Ferry processes alike: it shows
// statistics, queues, processes and the schedule, retry and dead sets, retries, deletes
// and kills jobs, enqueues jobs, and quiets or stops processes, reading and writing Redis
// exactly as Ruby's Sidekiq::API does (the logic is in package
// github.com/ferryhq/ferry/api).
//
//	go install github.com/ferryhq/ferry/cmd/ferry@latest
//	ferry --help
//
// Exit codes: 0 done; 1 failed (Redis unreachable or refusing, interrupted); 2 bad usage;
// 3 a jid, process or queue named on the command line was not found; 4 a bulk action was
// not confirmed (declined, or standard input is not a terminal and --yes was not given);
// 5 some matched entries were left in place.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	// go-redis logs dial failures itself, past ferry's redaction; ferry reports every
	// failure in its own message.
	redis.SetLogger(silentLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, osApp(os.Stdin, os.Stdout, os.Stderr), os.Args[1:])
	stop()
	os.Exit(code)
}

// silentLogger drops go-redis's internal log lines.
type silentLogger struct{}

func (silentLogger) Printf(context.Context, string, ...any) {}
