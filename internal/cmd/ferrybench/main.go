// Command ferrybench measures Ferry next to Ruby Sidekiq 6.4.1 on the same Redis.
//
//	go run ./internal/cmd/ferrybench run  [-redis URL] [-n 100000] [-c 10] [-latency-n 1000] [-ruby=true] [-metrics] [-tracing]
//	go run ./internal/cmd/ferrybench push [-redis URL] [-n 100000] [-g 10] [-ruby=true]
//
// run pre-loads n no-op jobs with Ruby's push_bulk, times the real `sidekiq` binary draining
// them, pre-loads them again and times a Ferry server (reliable fetch) running them, then
// measures Ferry's enqueue-to-start latency on an idle server and prints jobs/s, the ratio
// and peak RSS. -metrics attaches package promferry to the Ferry server and scrapes it every
// second; -tracing traces every job with package tracing: run with and without them, one
// after the other, to see what they cost per job. The Redis database it is given is flushed; database 0 is refused, and the
// default is database 14 of REDIS_URL or redis://127.0.0.1:6379. Do not run it while the test
// suite runs: the suite uses databases 1 to 15 of the same server.
//
// push times Go's PushBulk (n jobs) and Push (n/10 jobs, from g goroutines and from one)
// next to Ruby Sidekiq's push_bulk (n jobs, timed inside Ruby) and Sidekiq::Client.push
// (n/10 jobs), and prints jobs/s with the ratios.
//
// It needs ruby, Debian's ruby-sidekiq and the sidekiq binary on PATH (make setup).
package main

import (
	"fmt"
	"os"
)

func main() {
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
