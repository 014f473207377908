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

	"github.com/ferryhq/ferry/testutil"
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
		testutil.Unavailable(t, "no PostgreSQL at %s: %v", cfg.postgresURL, err)
	}
	t.Cleanup(func() {
		for _, table := range []string{cfg.outboxTable, cfg.usersTable} {
			if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
				t.Errorf("drop %s: %v", table, err)
			}
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
