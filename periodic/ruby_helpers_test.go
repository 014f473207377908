package periodic_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/sidekiq"
)

var cronCheck struct {
	once sync.Once
	err  error
	out  []byte
}

// requireSidekiqCron fails (in CI) or skips the test unless Ruby can load Sidekiq and
// sidekiq-cron (Debian's ruby-sidekiq-cron, installed by scripts/setup.sh).
func requireSidekiqCron(t testing.TB) {
	t.Helper()
	testsuite.RequireRuby(t)
	cronCheck.once.Do(func() {
		cronCheck.out, cronCheck.err = exec.Command("ruby", "-e", `require "sidekiq"; require "sidekiq-cron"; require "sidekiq/cron/version"; print Sidekiq::Cron::VERSION`).CombinedOutput()
	})
	if cronCheck.err != nil {
		testsuite.Unavailable(t, "ruby cannot load sidekiq-cron (apt-get install ruby-sidekiq-cron): %v: %s", cronCheck.err, cronCheck.out)
	}
}

// rubyCron runs script with Sidekiq and sidekiq-cron loaded against db and decodes the
// JSON it prints into out.
func rubyCron(t testing.TB, url, script string, out any) {
	t.Helper()
	res := testsuite.Ruby(t, url, `require "sidekiq-cron"`+"\n"+script)
	if err := json.Unmarshal([]byte(res), out); err != nil {
		t.Fatalf("ruby printed %q: %v", res, err)
	}
}

// startScheduler starts s and stops it at cleanup.
func startScheduler(t testing.TB, s *periodic.Scheduler) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stopping a scheduler: %v", err)
		}
	})
}

// newScheduler returns a scheduler on its own connection pool to url's database, as
// another process would have.
func newScheduler(t testing.TB, url string, cfg periodic.Config) (*periodic.Scheduler, *redis.Client) {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	client := sidekiq.NewClient(rdb, &sidekiq.ClientConfig{Namespace: cfg.Namespace})
	return periodic.New(rdb, client, &cfg), rdb
}

// queueLen is LLEN of a key, failing the test on an error.
func queueLen(t testing.TB, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
