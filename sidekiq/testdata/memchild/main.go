// Command memchild is the worker process of sidekiq's memory tests (hardening_test.go).
// The tests build it with go build, without the race detector, so the peak RSS it
// reports is what a production build uses. It reads its settings as JSON from
// FERRY_MEMCHILD, runs a Server until its jobs are done (mode "drain") or its one job is
// released (mode "hold"), and prints "log: ..." for each warning, then "stranded N" and
// "vmhwm_kb N".
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/sidekiq"
)

type spec struct {
	URL               string
	Mode              string
	Jobs              int
	HeartbeatInterval time.Duration
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "memchild:", err)
		os.Exit(1)
	}
}

func run() error {
	var sp spec
	if err := json.Unmarshal([]byte(os.Getenv("FERRY_MEMCHILD")), &sp); err != nil {
		return err
	}
	opts, err := redis.ParseURL(sp.URL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Logger: zap.New(core), HeartbeatInterval: sp.HeartbeatInterval})
	var mu sync.Mutex
	var ran []any // jids, written to hardening:done at the end so that jobs stay short
	all := make(chan struct{})
	ctx := context.Background()
	srv.Handle("Big", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		if sp.Mode == "hold" {
			if err := rdb.Set(ctx, "hardening:running", "1", 0).Err(); err != nil {
				return err
			}
			if err := rdb.BLPop(ctx, 5*time.Minute, "hardening:release").Err(); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, job.JID)
		if len(ran) == sp.Jobs {
			close(all)
		}
		return nil
	}))
	if err := srv.Start(ctx); err != nil {
		return err
	}
	var failed error
	select {
	case <-all:
	case <-time.After(8 * time.Minute):
		failed = fmt.Errorf("ran too few jobs in 8 minutes")
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		failed = fmt.Errorf("stop: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) > 0 {
		if err := rdb.RPush(ctx, "hardening:done", ran...).Err(); err != nil {
			return err
		}
	}
	for _, e := range logs.All() {
		if e.Level >= zapcore.WarnLevel {
			fmt.Printf("log: %s %v\n", e.Message, e.ContextMap())
		}
	}
	fmt.Printf("stranded %d\n", logs.FilterMessageSnippet("jobs stranded in this process").Len())
	fmt.Printf("vmhwm_kb %d\n", vmHWMKB())
	return failed
}

// vmHWMKB is this process's peak resident set size in KB.
func vmHWMKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return -1
}
