// Command sidecar is a Go worker that runs beside a Rails app's Sidekiq processes, on the
// same Redis, configured entirely by environment variables. Copy it, replace HardWorker
// with your handlers, and deploy it as one more process type (a Procfile line, a second
// container in the pod, a systemd unit).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 FERRY_QUEUES="go_critical,6;go_default,2" go run ./examples/sidecar
//
// # Environment
//
//	REDIS_URL               Redis to use. Default: redis://127.0.0.1:6379.
//	FERRY_QUEUES            Queues to work; default "default". Entries are separated by ";"
//	                        (or spaces), each in Sidekiq's -q notation: "name" or
//	                        "name,weight". "critical;default;low" is strict order (never
//	                        low while critical has work); "critical,6;default,2;low,1" is
//	                        Sidekiq's weighted order (about 6:2:1 of fetches), exactly as
//	                        `sidekiq -q critical,6 -q default,2 -q low,1`.
//	FERRY_QUEUE_MODE        auto (default: strict without weights, weighted with), strict,
//	                        weighted, or ranked (TResque: weights such as 100, 1, -5000 only
//	                        sort the queues, which are then served strictly).
//	FERRY_CONCURRENCY       Jobs run at once. Default: 10.
//	FERRY_NAMESPACE         Key prefix, for apps on redis-namespace (Sidekiq 6). Default: none.
//	FERRY_SHUTDOWN_TIMEOUT  How long SIGTERM waits for running jobs (a Go duration, "25s").
//	                        Default: 25s. Keep it below the platform's kill delay (Heroku
//	                        30 s, Kubernetes terminationGracePeriodSeconds).
//	FERRY_HTTP_ADDR         When set (say 127.0.0.1:9394, or :9394 in a container), serve
//	                        there: /metrics (Prometheus: package promferry's metrics, Go
//	                        runtime and process), /healthz (200 while the process runs) and
//	                        /readyz (200 once the first heartbeat is written, 503 before and
//	                        while quiet or stopping). Default: no HTTP server.
//
// # Metrics and dashboard
//
// grafana-dashboard.json beside this file is a Grafana dashboard for the metrics /metrics
// serves: throughput and failures by class, run time and latency percentiles, queue sizes
// and latencies, retry, scheduled and dead sets, busy workers, fetch batches and Redis
// errors. Import it and pick your Prometheus data source.
//
// # Splitting queues between Ruby and Go
//
// Sidekiq routes jobs by queue, not by class: a process that works a queue takes every job
// in it, whatever its class. So split the work by queue:
//
//   - Every job class in a queue this process works must have a handler here. A job
//     whose class has none fails with sidekiq.NoHandlerError (error_class
//     "Ferry::NoHandler" in the Web UI) and takes the normal retry path, with Sidekiq's
//     growing delays, to the dead set in the end; it is not handed back to Ruby, and a
//     retry may land on this process again.
//   - Give Go its own queues (here "go_critical" and "go_default") and keep them out of
//     the Ruby processes' -q list (config/sidekiq.yml), and keep Ruby's queues out of
//     FERRY_QUEUES. A Ruby process that takes a Go job fails it with NameError, the
//     mirror image.
//   - Rails enqueues Go jobs without a Ruby class, by name:
//     Sidekiq::Client.push("class" => "HardWorker", "queue" => "go_default", "args" => ["bob", 5]).
//     Arguments are JSON: strings, numbers, booleans, nil, arrays and string-keyed hashes.
//     For ActiveJob jobs, register the ActiveJob class name (the payload's "wrapped").
//   - To move a queue from Ruby to Go, deploy the Go handlers for every class in it first,
//     then add the queue to FERRY_QUEUES and remove it from the Ruby processes.
//
// # Stopping and crashing
//
// SIGTERM (and SIGINT) stops fetching, lets running jobs finish for FERRY_SHUTDOWN_TIMEOUT,
// then cancels the rest and pushes them back to the front of their queues; SIGTSTP only
// quiets. The Web UI lists the process and its Quiet and Stop buttons work. Jobs of a
// process killed outright (kill -9, a lost machine) stay in its private in-progress list
// and are returned to the front of their queues by another Ferry process (or this one,
// restarted) once the dead process's record expires: within about a minute and a half with
// the defaults. Ruby Sidekiq does not know those lists, so keep a Ferry process running
// under a supervisor that restarts it.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/sidekiq"
)

func main() {
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sidecar:", err)
		os.Exit(1)
	}
	defer func() { _ = log.Sync() }()
	if err := run(context.Background(), os.Getenv, log); err != nil {
		log.Error("sidecar stopped with an error", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
}

// run connects to Redis, registers the handlers and works jobs until SIGTERM or SIGINT
// (or until ctx ends).
func run(ctx context.Context, getenv func(string) string, log *zap.Logger) error {
	redisURL, cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", redact.Error(err, redisURL))
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to Redis at %s: %w", opts.Addr, err)
	}

	cfg.Logger = log
	srv := sidekiq.NewServer(rdb, &cfg)
	reg := observe(srv, rdb, cfg.Namespace, log) // first: its middleware times the others
	registerHandlers(srv, log)
	if addr := strings.TrimSpace(getenv("FERRY_HTTP_ADDR")); addr != "" {
		stop, err := serveHTTP(addr, handler(srv, reg), log)
		if err != nil {
			return fmt.Errorf("FERRY_HTTP_ADDR %q: %w", addr, err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stop(sctx)
		}()
	}
	log.Info("sidecar starting",
		zap.String("redis", opts.Addr), zap.Int("db", opts.DB),
		zap.Strings("queues", cfg.Queues), zap.Int("concurrency", cfg.Concurrency))
	return sidekiq.RunWithSignals(ctx, srv)
}

// registerHandlers is where your job classes go: one Handle per class that may appear in
// the queues this process works.
func registerHandlers(srv *sidekiq.Server, log *zap.Logger) {
	// Ruby: Sidekiq::Client.push("class" => "HardWorker", "queue" => "go_default", "args" => ["bob", 5])
	srv.Handle("HardWorker", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		args, err := job.ArgsSlice()
		if err != nil {
			// Arguments that cannot be decoded will not decode on a retry either.
			return sidekiq.Discard(err)
		}
		log.Info("HardWorker", zap.String("jid", job.JID), zap.String("queue", job.Queue), zap.Any("args", args))
		return nil
	}))
}

const defaultRedisURL = "redis://127.0.0.1:6379"

// loadConfig reads the environment described in the package documentation.
func loadConfig(getenv func(string) string) (redisURL string, cfg sidekiq.Config, err error) {
	redisURL = strings.TrimSpace(getenv("REDIS_URL"))
	if redisURL == "" {
		redisURL = defaultRedisURL
	}
	cfg.Queues, err = parseQueueList(getenv("FERRY_QUEUES"))
	if err != nil {
		return "", cfg, err
	}
	switch mode := strings.ToLower(strings.TrimSpace(getenv("FERRY_QUEUE_MODE"))); mode {
	case "", "auto":
		cfg.QueueMode = sidekiq.QueueModeAuto
	case "strict":
		cfg.QueueMode = sidekiq.QueueModeStrict
	case "weighted":
		cfg.QueueMode = sidekiq.QueueModeWeighted
	case "ranked":
		cfg.QueueMode = sidekiq.QueueModeRanked
	default:
		return "", cfg, fmt.Errorf("FERRY_QUEUE_MODE %q: want auto, strict, weighted or ranked", mode)
	}
	if v := strings.TrimSpace(getenv("FERRY_CONCURRENCY")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return "", cfg, fmt.Errorf("FERRY_CONCURRENCY %q: want a positive integer", v)
		}
		cfg.Concurrency = n
	} else {
		cfg.Concurrency = 10
	}
	cfg.Namespace = strings.TrimSpace(getenv("FERRY_NAMESPACE"))
	if v := strings.TrimSpace(getenv("FERRY_SHUTDOWN_TIMEOUT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return "", cfg, fmt.Errorf("FERRY_SHUTDOWN_TIMEOUT %q: want a positive duration such as 25s", v)
		}
		cfg.ShutdownTimeout = d
	} else {
		cfg.ShutdownTimeout = 25 * time.Second
	}
	return redisURL, cfg, nil
}

// parseQueueList splits FERRY_QUEUES into Sidekiq -q entries ("name" or "name,weight"),
// separated by ";" or white space. It catches the likely mistake of separating queue names
// with commas ("critical,default"), which -q notation would read as a weight.
func parseQueueList(v string) ([]string, error) {
	fields := strings.FieldsFunc(v, func(r rune) bool {
		return r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) == 0 {
		return []string{"default"}, nil
	}
	for _, f := range fields {
		name, weight, hasWeight := strings.Cut(f, ",")
		if name == "" {
			return nil, fmt.Errorf("FERRY_QUEUES entry %q: empty queue name", f)
		}
		if !hasWeight {
			continue
		}
		if _, err := strconv.Atoi(weight); err != nil {
			return nil, fmt.Errorf("FERRY_QUEUES entry %q: %q is not a weight; separate queues with \";\" (\"critical;default\", or \"critical,6;default,2\" with weights)", f, weight)
		}
	}
	return fields, nil
}
