package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
)

// A started relay delivers rows committed while it runs within a few intervals, and Stop
// returns once it has finished.
func TestStartDeliversUntilStop(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table, Interval: 20 * time.Millisecond})
	ctx := context.Background()
	if err := relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := relay.Start(ctx); err == nil {
		t.Fatal("second Start succeeded, want an error")
	}
	jids := pushInTx(t, db, table, 3, true)
	deadline := time.Now().Add(2 * time.Second)
	for len(queueCounts(t, rr, "default")) < len(jids) {
		if time.Now().After(deadline) {
			t.Fatalf("after 2s the queue holds %v, want %d jobs", queueCounts(t, rr, "default"), len(jids))
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := relay.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	late := pushInTx(t, db, table, 1, true)[0]
	if n, err := relay.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce after Stop claimed %d (%v), want the late row: the stopped relay took it", n, err)
	}
	if counts := queueCounts(t, rr, "default"); counts[late] != 1 || len(counts) != len(jids)+1 {
		t.Fatalf("queue holds %v", counts)
	}
}

// A payload the relay cannot read is parked at once with its error, never retried.
func TestUnreadablePayloadIsParked(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	if _, err := db.Exec("INSERT INTO "+table+" (jid, payload) VALUES ($1, $2)", "bad1", "{not json"); err != nil {
		t.Fatal(err)
	}
	drain(t, outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table}))
	s := state(t, db, table, "bad1")
	if !s.parked || s.delivered || s.attempts != 1 || !strings.Contains(s.lastError.String, "unreadable payload") {
		t.Fatalf("row %+v, want parked after one attempt with the parse error", s)
	}
	if n := len(queueCounts(t, rr, "default")); n != 0 {
		t.Fatalf("queue holds %d jobs, want none", n)
	}
}

func TestInvalidTableNames(t *testing.T) {
	t.Parallel()
	db, _ := newTable(t)
	ctx := context.Background()
	for _, name := range []string{"", "x; DROP TABLE y", "1abc", "a.b.c", `"quoted"`} {
		if err := outbox.CreateTable(ctx, db, name); err == nil || !strings.Contains(err.Error(), "invalid table name") {
			t.Errorf("CreateTable(%q) = %v, want invalid table name", name, err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := outbox.Push(ctx, tx, "X", nil, outbox.Table(name)); err == nil {
			t.Errorf("Push with table %q succeeded", name)
		}
		tx.Rollback()
		if name == "" {
			continue // the relay's empty Table means DefaultTable
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := outbox.NewRelay(db, nil, &outbox.RelayConfig{Table: name}).Run(cancelled); err == nil || !strings.Contains(err.Error(), "invalid table name") {
			t.Errorf("Run with table %q succeeded", name)
		}
	}
}

// With a poll interval of an hour, rows committed while the relay runs are delivered
// anyway: the table's trigger notifies the relay's LISTEN connection at commit. Rows
// committed before the relay listens are delivered by the pass that follows LISTEN.
// A rolled-back insert notifies nothing and delivers nothing.
func TestListenWakesRelay(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	if err := outbox.CreateTable(context.Background(), db, table); err != nil {
		t.Fatalf("CreateTable on an existing table (and trigger): %v", err)
	}
	relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table, Interval: time.Hour})
	before := pushInTx(t, db, table, 2, true)
	if err := relay.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Stop(context.Background()) })
	want := len(before)
	for round := range 3 {
		pushInTx(t, db, table, 1, false)
		want += len(pushInTx(t, db, table, 2, true))
		deadline := time.Now().Add(10 * time.Second)
		for len(queueCounts(t, rr, "default")) < want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: queue holds %d jobs after 10s, want %d (the relay polls hourly)", round, len(queueCounts(t, rr, "default")), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if n := len(queueCounts(t, rr, "default")); n != want {
		t.Fatalf("queue holds %d jobs, want %d", n, want)
	}
}
