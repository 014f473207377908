package periodic_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/sidekiq"
)

// Add checks a job at once; a spec it cannot read is refused with the reason.
func ExampleScheduler_Add() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	sched := periodic.New(rdb, sidekiq.NewClient(rdb, nil), nil)
	err := sched.Add(periodic.Job{Name: "nightly_report", Spec: "0 3 * * *", Class: "ReportWorker", Args: []any{"daily"}})
	fmt.Println(err)
	err = sched.Add(periodic.Job{Name: "weekly_digest", Spec: "0 8 * * MON Europe/Berlin", Class: "DigestWorker"})
	fmt.Println(err)
	err = sched.Add(periodic.Job{Name: "typo", Spec: "0 3 * *", Class: "ReportWorker"})
	fmt.Println(err)
	fmt.Println(errors.Is(err, periodic.ErrBadSpec), errors.Is(err, periodic.ErrInvalidJob))
	// Output:
	// <nil>
	// <nil>
	// periodic: job "typo": bad spec "0 3 * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found 4
	// true true
}

// List reads the jobs in sidekiq-cron's storage, Ruby's and Ferry's alike, with what
// keeps any of them from running.
func ExampleList() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	// Two jobs as sidekiq-cron writes them; the second has a spec fugit accepts and
	// Ferry cannot run ("L", the last day of the month).
	rdb.SAdd(ctx, "cron_jobs", "cron_job:cleanup", "cron_job:month_end")
	rdb.HSet(ctx, "cron_job:cleanup", "name", "cleanup", "cron", "*/15 * * * * UTC", "klass", "CleanupJob",
		"message", `{"class":"CleanupJob","queue":"low","args":[]}`, "status", "disabled",
		"last_enqueue_time", "2026-12-01 21:45:00 +0000")
	rdb.HSet(ctx, "cron_job:month_end", "name", "month_end", "cron", "0 0 L * *", "klass", "InvoiceJob", "status", "enabled")

	jobs, err := periodic.List(ctx, rdb, "")
	if err != nil {
		panic(err)
	}
	for _, j := range jobs {
		fmt.Printf("%s %q %s queue=%s last=%s err=%v\n", j.Name, j.Spec, j.Status, j.Queue,
			j.LastEnqueue.Format("2006-01-02 15:04"), j.Err)
	}
	// Output:
	// cleanup "*/15 * * * * UTC" disabled queue=low last=2026-12-01 21:45 err=<nil>
	// month_end "0 0 L * *" enabled queue= last=0001-01-01 00:00 err=periodic: bad spec "0 0 L * *": failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax
}
