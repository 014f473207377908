// Command ferrybench measures Ferry next to Ruby Sidekiq 6.4.1 (and go-workers2, the most
// used Go peer) on the same Redis.
//
//	go run ./internal/cmd/ferrybench run  [-redis URL | -redis-server redis-server] [-workload noop,io,fleet,rss|issue20]
//	                                      [-rounds 1] [-n 100000] [-c 10] [-goworkers2 BIN] [-latency-n 1000]
//	                                      [-ruby=true] [-metrics] [-tracing] [-markdown] ...
//	go run ./internal/cmd/ferrybench push [-redis URL] [-n 100000] [-g 10] [-ruby=true]
//
// run pre-loads jobs with Ruby's push_bulk and lets each worker drain them in turn, in
// rounds (A B C A B C ...), each worker in processes of its own: the real `sidekiq` binary,
// go-workers2 through the harness in internal/bench/goworkers2 (-goworkers2), and a Ferry
// server (this binary, run again as a child). For every drain it reports jobs/s, the Redis
// CPU per job and Redis's CPU utilisation (INFO CPU), commands and scripts per job (INFO
// commandstats), the worker's own CPU per job and its peak RSS, then medians with min–max,
// the ratios, the commands that cost most, and Ferry's idle enqueue-to-start latency.
// Workloads:
//
//	noop   n no-op jobs, every worker at concurrency c (the default)
//	io     jobs that each wait 5–20 ms (seeded, the same for every worker): Ferry at
//	       -io-c 10,100,1000, Ruby at -io-ruby-c 10,25; jobs per second of worker CPU
//	fleet  one Ferry process against -fleet-procs 3 on the same Redis; Redis utilisation
//	rss    Ferry at concurrency -rss-c 100: peak RSS
//	issue20  all four, then issue 20's targets checked against the medians
//
// -metrics attaches package promferry to the Ferry server and scrapes it every second;
// -tracing traces every job with package tracing: run with and without them, one after
// the other, to see what they cost per job. The Redis database it is given is flushed;
// database 0 is refused, and the default is database 14 of REDIS_URL or
// redis://127.0.0.1:6379. Do not run it on the shared Redis while the test suite runs: the
// suite uses databases 1 to 15 of the same server, and INFO's figures would include its
// work. -redis-server starts a private redis-server on a free port instead.
//
// push times Go's PushBulk (n jobs) and Push (n/10 jobs, from g goroutines and from one)
// next to Ruby Sidekiq's push_bulk (n jobs, timed inside Ruby) and Sidekiq::Client.push
// (n/10 jobs), and prints jobs/s with the ratios.
//
// It needs ruby, Debian's ruby-sidekiq and the sidekiq binary on PATH (make setup).
// BENCHMARKS.md has the figures and how they were taken.
package main

import (
	"fmt"
	"os"
)

func main() {
	if os.Getenv(childEnv) == "ferry" {
		if err := ferryChild(os.Args[1:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "ferrybench child:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ferrybench run|push [flags]   (ferrybench <command> -h for flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:], os.Stdout)
	case "push":
		err = cmdPush(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferrybench:", err)
		os.Exit(1)
	}
}
