package outbox_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/faultproxy"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
)

// Environment of the relay child process (TestHelperRelayProcess).
const (
	childTableEnv = "FERRY_OUTBOX_CHILD_TABLE"
	childRedisEnv = "FERRY_OUTBOX_CHILD_REDIS"
)

// childBatch is the relay child's batch: small, so that a kill at a random moment often
// falls between a batch's push and its commit.
const childBatch = 25

// TestHelperRelayProcess is not a test: run by TestRelaySIGKILL as a child process, it runs
// a relay over the table and Redis named in its environment until it is killed.
func TestHelperRelayProcess(t *testing.T) {
	table := os.Getenv(childTableEnv)
	if table == "" {
		t.Skip("helper process for TestRelaySIGKILL")
	}
	db, err := sql.Open("pgx", postgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	opts, err := redis.ParseURL(os.Getenv(childRedisEnv))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	relay := outbox.NewRelay(db, sidekiq.NewClient(rdb, nil), &outbox.RelayConfig{Table: table, Batch: childBatch, Interval: 10 * time.Millisecond})
	if err := relay.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRelaySIGKILL: 10,000 committed rows (a tenth of them scheduled), two relays in child
// processes at a time, killed with SIGKILL at random moments and replaced, again and again,
// until every row is marked delivered; then every jid is in Redis exactly once (in its
// queue, or in the schedule set) and none is missing.
func TestRelaySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills relay processes over 10,000 rows")
	}
	t.Parallel()
	const (
		rounds  = 10
		perTx   = 1000
		delayed = 100 // of each round's rows, scheduled an hour ahead
		minKill = 20  // kill at least this many children, even if they finish early
		maxKill = 200
	)
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	var now, later []string
	for range rounds {
		now = append(now, pushInTx(t, db, table, perTx-delayed, true)...)
		later = append(later, pushInTx(t, db, table, delayed, true, outbox.In(time.Hour))...)
	}
	pushInTx(t, db, table, 50, false) // rolled back: never delivered

	// The children reach Redis through a proxy adding latency, as a network would: a
	// batch's push then takes long enough for random kills to land inside it.
	proxy, err := faultproxy.Start(rr.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.SetLatency(5 * time.Millisecond)
	u, err := url.Parse(rr.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.Addr()
	childRedis := u.String()

	// Two relays run at once: each round starts one and, after a random moment, kills
	// the older of the two.
	kills, midWork, inWindow := 0, 0, 0
	var running []*exec.Cmd
	for kills < maxKill {
		running = append(running, startRelayChild(t, table, childRedis))
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond) // a random moment
		if len(running) < 2 {
			continue
		}
		victim := running[0]
		running = running[1:]
		if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = victim.Wait()
		kills++
		if pushedNotMarked(t, db, table, rr.Client) > 0 {
			inWindow++ // a relay had pushed rows it had not marked yet
		}
		left := undelivered(t, db, table)
		if left == 0 && kills >= minKill {
			break
		}
		if left > 0 {
			midWork++
		}
	}
	for _, c := range running {
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
	}
	if n := undelivered(t, db, table); n != 0 {
		// Let a last child finish the table, unkilled.
		child := startRelayChild(t, table, childRedis)
		deadline := time.Now().Add(30 * time.Second)
		for undelivered(t, db, table) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		_ = child.Process.Signal(syscall.SIGKILL)
		_ = child.Wait()
	}
	t.Logf("%d children killed, %d with rows left to deliver, %d times leaving rows pushed but not marked", kills, midWork, inWindow)
	if n := undelivered(t, db, table); n != 0 {
		t.Fatalf("%d rows still undelivered", n)
	}
	if midWork < minKill/2 {
		t.Fatalf("only %d children were killed with rows left to deliver, want at least %d", midWork, minKill/2)
	}

	queued := queueCounts(t, rr, "default")
	scheduled := map[string]int{}
	members, err := rr.Client.ZRange(context.Background(), "schedule", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		j, err := sidekiq.ParseJobString(m)
		if err != nil {
			t.Fatal(err)
		}
		scheduled[j.JID]++
	}
	check := func(where string, got map[string]int, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s holds %d distinct jids, want %d", where, len(got), len(want))
		}
		for _, jid := range want {
			if got[jid] != 1 {
				t.Errorf("jid %s is in %s %d times, want once", jid, where, got[jid])
			}
		}
	}
	check("queue:default", queued, now)
	check("schedule", scheduled, later)
	var parked, attempted int
	if err := db.QueryRow("SELECT count(*) FILTER (WHERE parked_at IS NOT NULL), count(*) FILTER (WHERE attempts > 0) FROM "+table).
		Scan(&parked, &attempted); err != nil {
		t.Fatal(err)
	}
	if parked != 0 || attempted != 0 {
		t.Fatalf("%d rows parked, %d with failed attempts; want none", parked, attempted)
	}
}

// startRelayChild runs TestHelperRelayProcess in a new process of the test binary. It is
// killed at cleanup if still running.
func startRelayChild(t *testing.T, table, redisURL string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRelayProcess$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), childTableEnv+"="+table, childRedisEnv+"="+redisURL, "POSTGRES_URL="+postgresURL())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the relay process: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() && out.Len() > 0 {
			t.Logf("relay process output:\n%s", out.String())
		}
	})
	return cmd
}

func undelivered(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table + " WHERE delivered_at IS NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// pushedNotMarked counts rows whose delivery marker is in Redis while the row is not
// marked delivered: what a relay killed after pushing and before committing leaves.
func pushedNotMarked(t *testing.T, db *sql.DB, table string, rdb redis.UniversalClient) int {
	t.Helper()
	rows, err := db.Query("SELECT jid FROM " + table + " WHERE delivered_at IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var jid string
		if err := rows.Scan(&jid); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, outbox.MarkerPrefix+jid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for start := 0; start < len(keys); start += 1000 {
		c, err := rdb.Exists(context.Background(), keys[start:min(start+1000, len(keys))]...).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += int(c)
	}
	return n
}
