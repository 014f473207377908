// Package promferry exports what Ferry does as Prometheus metrics.
//
// It has two parts, and you will usually want both.
//
// # What this process does: Metrics
//
// Metrics hears a server's jobs through sidekiq.Server.Observe and a small run middleware,
// and counts them by queue and class:
//
//	ferry_jobs_processed_total{queue,class}    every job run to an outcome, failures included
//	ferry_jobs_failed_total{queue,class}       handler failed: retried + dead + dropped
//	ferry_jobs_retried_total{queue,class}      put in the retry set
//	ferry_jobs_dead_total{queue,class}         put in the dead set (or not a job at all)
//	ferry_jobs_dropped_total{queue,class}      failed with "retry": false
//	ferry_jobs_rescheduled_total{queue,class}  handler returned sidekiq.RetryIn (not a failure)
//	ferry_jobs_skipped_total{queue,class}      middleware.Skip: no longer needed (also processed)
//	ferry_jobs_requeued_total{queue,class}     pushed back unfinished by a stopping server
//	ferry_job_duration_seconds{queue,class}    histogram of run time (middleware and handler)
//	ferry_job_latency_seconds{queue,class}     histogram of enqueued_at to start
//	ferry_busy_workers{queue}                  jobs running now in this process
//	ferry_fetch_batch_size{queue}              histogram of jobs per fetch
//	ferry_redis_errors_total{op}               failed Redis calls, by operation
//
// processed and failed mean what they mean in Sidekiq's stat:processed and stat:failed, so
// rate(ferry_jobs_processed_total[5m]) summed over Go processes is Go's share of the Web
// UI's processed rate.
//
// Wire it up before the server starts, and register it:
//
//	m := promferry.New(nil)
//	m.Attach(srv)                // observer + run middleware; Attach before other Use calls
//	prometheus.MustRegister(m)   // or your own registry
//
// # Label values are bounded
//
// The class comes from the payload, which anyone who can write to Redis controls, and
// Prometheus keeps every label value it ever saw. So a class gets a label value of its own
// only if this process has a handler for it (a job that fails with sidekiq.ErrNoHandler, or
// whose payload is not a job, counts as "other"), at most Config.MaxClasses of them, or
// exactly those in Config.Classes. Queues are those of the server (Attach), or the first
// Config.MaxQueues seen. Every value is cut to MaxLabelLength bytes and made valid UTF-8.
//
// # What every process shares: StatsCollector
//
// StatsCollector reads the state the Web UI's dashboard shows, for Ruby and Go alike:
//
//	ferry_sidekiq_queue_size{queue}              LLEN of the queue
//	ferry_sidekiq_queue_latency_seconds{queue}   age of its oldest job (Sidekiq's Queue#latency)
//	ferry_sidekiq_queues                          queues in the queues set
//	ferry_sidekiq_retry_size, _scheduled_size, _dead_size
//	ferry_sidekiq_processes, ferry_sidekiq_busy   live processes, jobs running in all of them
//	ferry_sidekiq_processed_total, _failed_total  stat:processed and stat:failed
//	ferry_sidekiq_up, _refresh_errors_total, _stats_age_seconds
//
// It is cheap to scrape often: figures are cached for StatsConfig.Interval (5 s), a
// refresh is one pipelined round trip, and it reads at most MaxQueues queues and
// MaxProcesses processes. Every process that runs one reports the same figures, so query
// them with max by (queue), not sum, or run the collector in one process only.
//
//	prometheus.MustRegister(promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Queues: srv.Queues()}))
//
// examples/sidecar serves both on /metrics, with a Grafana dashboard beside it.
package promferry
