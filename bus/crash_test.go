package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// The SIGKILL test drives the bus in another OS process: the test binary re-runs itself
// as TestHelperBusDriver with busCrashEnv set.

const busCrashEnv = "FERRY_BUS_CRASH_DRIVER"

type busCrashSpec struct {
	URL        string
	ProcessTTL time.Duration
	FreezeAt   int64 // after this many events fanned out, every driver blocks after fanning out
}

const (
	crashFannedOut = "buscrash:fanned_out" // bus_ids the child fanned out, in order
	crashFrozen    = "buscrash:frozen"     // one entry per worker blocked after a fan-out
)

// TestHelperBusDriver is not a test: it is the driver process TestDriverSIGKILL starts and
// kills. Once it has fanned out FreezeAt events, each of its workers blocks after pushing an
// event's subscriber jobs and before the event is acknowledged, until the process dies.
func TestHelperBusDriver(t *testing.T) {
	raw := os.Getenv(busCrashEnv)
	if raw == "" {
		t.Skip("helper process of TestDriverSIGKILL; it runs only as its child")
	}
	var spec busCrashSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(spec.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.ReadTimeout, opts.WriteTimeout = 20*time.Second, 20*time.Second // a loaded machine
	rdb := redis.NewClient(opts)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: []string{bus.IncomingQueue}, Concurrency: 4, ProcessTTL: spec.ProcessTTL})
	b, err := bus.Attach(srv)
	if err != nil {
		t.Fatal(err)
	}
	var fanned atomic.Int64
	bus.SetAfterFanOut(b, func(ctx context.Context, busID string) {
		bg := context.WithoutCancel(ctx)
		rdb.RPush(bg, crashFannedOut, busID)
		if fanned.Add(1) >= spec.FreezeAt {
			rdb.RPush(bg, crashFrozen, busID)
			select {} // killed here
		}
	})
	if err := srv.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDriverSIGKILL: a Go server driving the bus is killed with SIGKILL while its workers
// hold events whose subscriber jobs are pushed but which are not acknowledged, with more
// events prefetched behind them. Another server recovers the dead process's events and
// drives them again: no event is lost, and every subscriber gets every event at least
// once (the interrupted ones twice).
func TestDriverSIGKILL(t *testing.T) {
	t.Parallel()
	db := realRedis(t)
	ctx := context.Background()
	const events = 300
	const processTTL = 2 * time.Second

	// Three subscriptions in two apps, registered but not run: their jobs stay queued
	// for the test to count.
	h := newRecorder().handler()
	appA := bus.NewApp(db.Client, "appa", nil)
	appA.Subscribe("order_placed", h)
	appA.SubscribeMatch("orders_too", bus.Match{"bus_event_type": "order_.*"}, h, bus.Queue("two"))
	appB := bus.NewApp(db.Client, "appb", nil)
	appB.SubscribeMatch("placed", bus.Match{"bus_event_type": "order_placed", "order_id": bus.Present}, h)
	for _, a := range []*bus.App{appA, appB} {
		if err := a.Register(ctx); err != nil {
			t.Fatal(err)
		}
	}
	client := sidekiq.NewClient(db.Client, nil)
	ids := map[string]int{}
	for i := 0; i < events; i++ {
		id, err := bus.Publish(ctx, client, "order_placed", map[string]any{"order_id": i})
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = i
	}

	raw, _ := json.Marshal(busCrashSpec{URL: db.URL, ProcessTTL: processTTL, FreezeAt: 40})
	child := testsuite.StartHelperProcess(t, "driver process", "TestHelperBusDriver", busCrashEnv+"="+string(raw))
	testutil.Eventually(t, 60*time.Second, "every worker of the driver process to freeze after a fan-out", func() bool {
		return db.Client.LLen(ctx, crashFrozen).Val() == 4
	})
	child.Kill(t)
	frozen, err := db.Client.LRange(ctx, crashFrozen, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := db.Client.Keys(ctx, "ferry:inflight:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	for _, k := range keys {
		n, err := db.Client.HLen(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		held += n
	}
	if held < int64(len(frozen)) {
		t.Fatalf("%d events in the dead process's in-flight hash, want at least the %d frozen ones", held, len(frozen))
	}
	left, err := db.Client.LLen(ctx, "queue:"+bus.IncomingQueue).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d events fanned out, %d held unacknowledged (%d frozen mid-drive), %d still queued",
		db.Client.LLen(ctx, crashFannedOut).Val(), held, len(frozen), left)

	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Queues: []string{bus.IncomingQueue}, Concurrency: 4,
		ProcessTTL: processTTL, RecoverInterval: 100 * time.Millisecond})
	b, err := bus.Attach(srv)
	if err != nil {
		t.Fatal(err)
	}
	stop := startServer(t, srv)
	// Every event still queued and every event the dead process held must be driven by
	// the survivor. Errors (a slow Redis on a loaded machine) never count as "empty".
	testutil.Eventually(t, 60*time.Second, "the survivor to recover and drive every remaining event", func() bool {
		if b.Stats().Driven < left+held {
			return false
		}
		n, err := db.Client.LLen(ctx, "queue:"+bus.IncomingQueue).Result()
		if err != nil || n != 0 {
			return false
		}
		keys, err := db.Client.Keys(ctx, "ferry:inflight:*").Result()
		if err != nil {
			return false
		}
		for _, k := range keys {
			if n, err := db.Client.HLen(ctx, k).Result(); err != nil || n != 0 {
				return false
			}
		}
		return true
	})
	stop()

	for _, q := range []string{"appa_default", "appa_two", "appb_default"} {
		got := map[int]int{}
		for _, job := range queueJobs(t, db.Client, q) {
			ev := eventOf(t, job)
			i, ok := ids[ev["bus_id"].(string)]
			if !ok || strconv.Itoa(i) != fmt.Sprint(ev["order_id"]) {
				t.Fatalf("%s: a job for an unknown event %v", q, ev)
			}
			got[i]++
		}
		var missing []int
		for i := 0; i < events; i++ {
			if got[i] == 0 {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: events %v lost", q, missing)
		}
		for _, id := range frozen {
			if got[ids[id]] < 2 {
				t.Errorf("%s: event %d was fanned out before the kill and not acknowledged, so it must be driven again; got it %d times", q, ids[id], got[ids[id]])
			}
		}
	}
	for _, k := range []string{"retry", "dead"} {
		if n := db.Client.ZCard(ctx, k).Val(); n != 0 {
			t.Errorf("%s holds %d jobs", k, n)
		}
	}
}
