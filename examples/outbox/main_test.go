package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/outbox"
)

// TestOutboxExample runs the example with -once against the machine's PostgreSQL and the
// embedded Redis, in tables of its own: the committed sign-up's email is sent, the
// rolled-back one left neither a user nor an outbox row.
func TestOutboxExample(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(b[:])
	cfg := config{
		postgresURL: envOr("POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"),
		outboxTable: "example_outbox_" + suffix,
		usersTable:  "example_users_" + suffix,
		once:        true,
	}
	db, err := sql.Open("pgx", cfg.postgresURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the drops below
	pctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		testsuite.Unavailable(t, "no PostgreSQL at %s: %v", redact.URL(cfg.postgresURL), redact.Error(err, cfg.postgresURL))
	}
	// Cleanups run last first: drop both tables, then check that nothing named after them
	// is left (the outbox's trigger function goes with outbox.DropTable, not DROP TABLE).
	t.Cleanup(func() {
		var left []string
		rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE strpos(tablename, $1) > 0
UNION ALL SELECT proname FROM pg_proc WHERE strpos(proname, $1) > 0`, suffix)
		if err != nil {
			t.Errorf("checking for leftovers: %v", err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			if rows.Scan(&name) == nil {
				left = append(left, name)
			}
		}
		if len(left) > 0 {
			t.Errorf("the example left %v in the database", left)
		}
	})
	t.Cleanup(func() {
		if err := outbox.DropTable(context.Background(), db, cfg.outboxTable); err != nil {
			t.Errorf("drop %s: %v", cfg.outboxTable, err)
		}
		if _, err := db.Exec("DROP TABLE IF EXISTS " + cfg.usersTable); err != nil {
			t.Errorf("drop %s: %v", cfg.usersTable, err)
		}
	})

	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "sending welcome email to alice+") || strings.Contains(out.String(), "email to bob+") {
		t.Fatalf("output:\n%s", out.String())
	}
	var users, rows, delivered int
	if err := db.QueryRow("SELECT count(*) FROM " + cfg.usersTable).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT count(*), count(delivered_at) FROM "+cfg.outboxTable).Scan(&rows, &delivered); err != nil {
		t.Fatal(err)
	}
	if users != 1 || rows != 1 || delivered != 1 {
		t.Fatalf("%d users, %d outbox rows (%d delivered); want 1, 1, 1", users, rows, delivered)
	}
}
