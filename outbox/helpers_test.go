package outbox_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/testutil"
)

// postgresURL is POSTGRES_URL, or the database scripts/setup.sh prepares (the password is
// ignored where the server trusts local connections, as on the CI machine).
func postgresURL() string {
	if u := os.Getenv("POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"
}

// runTag is in the name of every table this test process creates, so that TestMain can
// find what the process left behind without looking at other processes' tables.
var runTag = func() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%d_%s", os.Getpid(), hex.EncodeToString(b[:]))
}()

// TestMain runs the tests, then fails the run if any table or function whose name holds
// runTag is still in the database: every test must remove all it creates
// (outbox.DropTable), or the shared test database fills with orphans.
func TestMain(m *testing.M) {
	code := m.Run()
	if left, err := leftovers(runTag); err != nil {
		fmt.Fprintln(os.Stderr, "outbox tests: checking for leftovers:", err)
	} else if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "outbox tests left %d objects in the database: %v\n", len(left), left)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers lists the tables and functions of the test database whose name contains tag.
// No PostgreSQL means nothing was created: no leftovers.
func leftovers(tag string) ([]string, error) {
	db, err := sql.Open("pgx", postgresURL())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if db.PingContext(ctx) != nil {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, `
SELECT 'table ' || schemaname || '.' || tablename FROM pg_tables WHERE strpos(tablename, $1) > 0
UNION ALL
SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE strpos(p.proname, $1) > 0`, tag)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// newTable opens the test PostgreSQL and creates an outbox table with a random name,
// removed with outbox.DropTable at cleanup. A missing PostgreSQL skips the test (fails it
// in CI).
func newTable(t testing.TB) (*sql.DB, string) {
	t.Helper()
	db, err := sql.Open("pgx", postgresURL())
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		testsuite.Unavailable(t, "no PostgreSQL at %s: %v", redact.URL(postgresURL()), redact.Error(err, postgresURL()))
		return nil, ""
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	table := "outbox_test_" + runTag + "_" + hex.EncodeToString(b[:])
	// Registered first, so it runs after every other cleanup of the test (relays stopped).
	t.Cleanup(func() {
		if err := outbox.DropTable(context.Background(), db, table); err != nil {
			t.Errorf("drop %s: %v", table, err)
		}
	})
	if err := outbox.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	return db, table
}

// pushInTx writes n jobs of class in one transaction and commits it (or rolls it back).
func pushInTx(t testing.TB, db *sql.DB, table string, n int, commit bool, opts ...outbox.Option) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	jids := make([]string, 0, n)
	opts = append([]outbox.Option{outbox.Table(table)}, opts...)
	for i := range n {
		jid, err := outbox.Push(ctx, tx, "WelcomeEmailJob", []any{i, "user@example.com"}, opts...)
		if err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
		jids = append(jids, jid)
	}
	if commit {
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		t.Fatal(err)
	}
	return jids
}

// drain runs RunOnce until it claims nothing and returns how many rows it claimed. It may
// run in a goroutine of the test.
func drain(t *testing.T, r *outbox.Relay) int {
	t.Helper()
	total := 0
	for {
		n, err := r.RunOnce(context.Background())
		if err != nil {
			t.Error(err)
			return total
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

type rowState struct {
	attempts  int
	lastError sql.NullString
	delivered bool
	parked    bool
}

func state(t *testing.T, db *sql.DB, table, jid string) rowState {
	t.Helper()
	var s rowState
	err := db.QueryRow("SELECT attempts, last_error, delivered_at IS NOT NULL, parked_at IS NOT NULL FROM "+table+" WHERE jid = $1", jid).
		Scan(&s.attempts, &s.lastError, &s.delivered, &s.parked)
	if err != nil {
		t.Fatalf("row %s: %v", jid, err)
	}
	return s
}

// queueCounts returns how many times each jid appears in the queue.
func queueCounts(t testing.TB, rr *testsuite.RealRedisDB, queue string) map[string]int {
	t.Helper()
	jobs, err := testutil.Enqueued(context.Background(), rr.Client, "", queue)
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[string]int, len(jobs))
	for _, j := range jobs {
		counts[j.JID]++
	}
	return counts
}
