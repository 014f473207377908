package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/internal/redisproc"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestRedisKilledRowsWaitThenDeliver: a running relay; its private redis-server is killed;
// rows committed during the outage wait (not parked, no attempt counted, however many
// passes fail); once the server is back, every row is delivered exactly once.
func TestRedisKilledRowsWaitThenDeliver(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	srv := redisproc.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialerRetries: 1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	core, logs := observer.New(zap.WarnLevel)
	const maxAttempts = 2
	relay := outbox.NewRelay(db, sidekiq.NewClient(rdb, nil), &outbox.RelayConfig{
		Table: table, Interval: 10 * time.Millisecond, MaxAttempts: maxAttempts, Logger: zap.New(core),
	})
	ctx := context.Background()
	if err := relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Stop(context.Background()) })

	before := pushInTx(t, db, table, 20, true)
	testutil.Eventually(t, 10*time.Second, "rows delivered before the outage", func() bool {
		return undelivered(t, db, table) == 0
	})

	srv.Kill()
	during := pushInTx(t, db, table, 30, true)
	during = append(during, pushInTx(t, db, table, 5, true, outbox.In(time.Hour))...)
	// Wait until the relay has failed more passes than MaxAttempts on these rows.
	testutil.Eventually(t, 10*time.Second, "passes failing with ErrRedisUnavailable", func() bool {
		return logs.FilterMessage("outbox relay batch failed").Len() > maxAttempts+2
	})
	for _, e := range logs.FilterMessage("outbox relay batch failed").All() {
		if msg, _ := e.ContextMap()["error"].(string); !strings.Contains(msg, outbox.ErrRedisUnavailable.Error()) {
			t.Fatalf("a pass failed with %q, want ErrRedisUnavailable", msg)
		}
	}
	if n := logs.FilterMessage("outbox delivery failed").Len(); n != 0 {
		t.Fatalf("%d rows counted a failed attempt during the outage", n)
	}
	for _, jid := range during {
		if s := state(t, db, table, jid); s.attempts != 0 || s.parked || s.delivered {
			t.Fatalf("row %s during the outage: %+v, want waiting with no attempt counted", jid, s)
		}
	}

	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "rows delivered after Redis is back", func() bool {
		return undelivered(t, db, table) == 0
	})
	// Read through a client of its own: the relay's may still answer with the dial error
	// its pool kept from the outage for a moment after Redis is back.
	check := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { check.Close() })
	queued, err := check.LRange(ctx, "queue:default", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, p := range queued {
		j, err := sidekiq.ParseJobString(p)
		if err != nil {
			t.Fatal(err)
		}
		counts[j.JID]++
	}
	sched, err := check.ZRange(ctx, "schedule", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sched {
		j, err := sidekiq.ParseJobString(p)
		if err != nil {
			t.Fatal(err)
		}
		counts[j.JID]++
	}
	all := append(append([]string{}, before...), during...)
	if len(counts) != len(all) {
		t.Fatalf("Redis holds %d distinct jids, want %d", len(counts), len(all))
	}
	for _, jid := range all {
		if counts[jid] != 1 {
			t.Fatalf("jid %s is in Redis %d times, want once", jid, counts[jid])
		}
		if s := state(t, db, table, jid); s.attempts != 0 || s.parked {
			t.Fatalf("row %s: %+v, want delivered with no attempt counted", jid, s)
		}
	}
}

// TestRedisKilledMidDelivery: redis-server (append-only, fsync always) is killed with
// SIGKILL ten times while a relay works through 5,000 rows, so pipelines are cut between
// jobs and, now and then, the append-only file inside a Lua call's MULTI ... EXEC block
// (redisproc repairs such a file as an operator must; see its package documentation);
// after each restart the relay carries on, and every jid ends up in Redis exactly once,
// with no row parked or charged an attempt.
func TestRedisKilledMidDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills redis-server during 5,000 deliveries")
	}
	t.Parallel()
	const rows, kills = 5000, 10
	db, table := newTable(t)
	srv := redisproc.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialerRetries: 1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	var jids []string
	for range rows / 1000 {
		jids = append(jids, pushInTx(t, db, table, 1000, true)...)
	}
	relay := outbox.NewRelay(db, sidekiq.NewClient(rdb, nil), &outbox.RelayConfig{Table: table, Batch: 100, Interval: 10 * time.Millisecond})
	if err := relay.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Stop(context.Background()) })
	for k := 1; k <= kills; k++ {
		threshold := rows - k*rows/(kills+1)
		testutil.Eventually(t, 30*time.Second, "deliveries before a kill", func() bool { return undelivered(t, db, table) <= threshold })
		srv.Kill()
		if err := srv.StartAgain(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 30*time.Second, "every row delivered", func() bool { return undelivered(t, db, table) == 0 })
	t.Logf("%d kills, %d torn append-only files repaired", kills, srv.AOFRepairs())

	// A client of its own: the relay's may still answer with the dial error it keeps
	// for a moment after an outage when the rows were all delivered before the last kill.
	check := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { check.Close() })
	ctx := context.Background()
	counts := map[string]int{}
	queued, err := check.LRange(ctx, "queue:default", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range queued {
		j, err := sidekiq.ParseJobString(p)
		if err != nil {
			t.Fatal(err)
		}
		counts[j.JID]++
	}
	if len(counts) != rows {
		t.Fatalf("Redis holds %d distinct jids, want %d", len(counts), rows)
	}
	for _, jid := range jids {
		if counts[jid] != 1 {
			t.Fatalf("jid %s is in Redis %d times, want once", jid, counts[jid])
		}
	}
	var bad int
	if err := db.QueryRow("SELECT count(*) FROM " + table + " WHERE attempts > 0 OR parked_at IS NOT NULL").Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		var why string
		_ = db.QueryRow("SELECT last_error FROM " + table + " WHERE attempts > 0 LIMIT 1").Scan(&why)
		t.Fatalf("%d rows parked or charged an attempt, for example: %s", bad, why)
	}
}
