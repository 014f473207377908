package outbox_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

func TestCommitAndRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		commit bool
		want   int
	}{
		{"rollback delivers nothing", false, 0},
		{"commit delivers once", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, table := newTable(t)
			rr := testsuite.RealRedis(t)
			relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table})
			jid := pushInTx(t, db, table, 1, tc.commit)[0]
			drain(t, relay)
			drain(t, relay) // a second pass must not deliver again
			counts := queueCounts(t, rr, "default")
			if counts[jid] != tc.want || len(counts) != tc.want {
				t.Fatalf("queue holds %v, want jid %s %d times", counts, jid, tc.want)
			}
			if tc.commit {
				if s := state(t, db, table, jid); !s.delivered || s.attempts != 0 {
					t.Fatalf("row state %+v, want delivered with no failed attempt", s)
				}
				job := testutil.RequireEnqueued(t, rr.Client, "", "default", "WelcomeEmailJob", []any{0, "user@example.com"})
				if job.EnqueuedAt.IsZero() || job.CreatedAt.IsZero() || !job.Retry.IsSet() {
					t.Fatalf("delivered job lacks Sidekiq fields: %+v", job)
				}
			}
		})
	}
}

func TestScheduledRowGoesToScheduleSet(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table})
	at := time.Now().Add(time.Hour)
	jid := pushInTx(t, db, table, 1, true, outbox.At(at), outbox.Queue("mail"))[0]
	drain(t, relay)
	got := testutil.RequireScheduled(t, rr.Client, "", "WelcomeEmailJob", []any{0, "user@example.com"}, at, time.Second)
	if got.JID != jid || got.Queue != "mail" {
		t.Fatalf("scheduled job %s in queue %q, want %s in mail", got.JID, got.Queue, jid)
	}
}

// The ctx given to PushJob carries the guard to the terminal push when the client has no
// middleware: a second push of the same jid is stopped by the marker.
func TestGuardThroughPushJobContext(t *testing.T) {
	t.Parallel()
	rr := testsuite.RealRedis(t)
	client := sidekiq.NewClient(rr.Client, nil)
	job := &sidekiq.Job{Class: "X", JID: sidekiq.NewJID()}
	ctx := sidekiq.WithPushGuards(context.Background(), outbox.DeliveryGuard(job.JID))
	if _, err := client.PushJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	_, err := client.PushJob(ctx, job)
	var held *sidekiq.PushStoppedError
	if !errors.As(err, &held) || !errors.Is(err, sidekiq.ErrPushStopped) || held.JID != job.JID {
		t.Fatalf("second push: %v, want PushStoppedError held by %s", err, job.JID)
	}
	if ttl := rr.Client.TTL(context.Background(), outbox.MarkerPrefix+job.JID).Val(); ttl <= 0 || ttl > outbox.MarkerTTL {
		t.Fatalf("marker TTL %v", ttl)
	}
	if n := len(queueCounts(t, rr, "default")); n != 1 {
		t.Fatalf("queue holds %d jobs, want 1", n)
	}
}

// A relay that pushed a row and died before marking it: the next relay finds the marker,
// pushes nothing and marks the row delivered.
func TestCrashAfterPushBeforeMark(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	client := sidekiq.NewClient(rr.Client, nil)
	jid := pushInTx(t, db, table, 1, true)[0]

	var payload string
	if err := db.QueryRow("SELECT payload FROM "+table+" WHERE jid = $1", jid).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	job, err := sidekiq.ParseJobString(payload)
	if err != nil {
		t.Fatal(err)
	}
	ctx := sidekiq.WithPushGuards(context.Background(), outbox.DeliveryGuard(jid))
	if _, err := client.PushJob(ctx, job); err != nil {
		t.Fatal(err)
	}

	drain(t, outbox.NewRelay(db, client, &outbox.RelayConfig{Table: table}))
	if s := state(t, db, table, jid); !s.delivered || s.attempts != 0 {
		t.Fatalf("row state %+v, want delivered", s)
	}
	if counts := queueCounts(t, rr, "default"); counts[jid] != 1 || len(counts) != 1 {
		t.Fatalf("queue holds %v, want %s once", counts, jid)
	}
}

func TestTwoRelaysDeliverEachJidOnce(t *testing.T) {
	t.Parallel()
	const rows = 2000
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	jids := pushInTx(t, db, table, rows, true)
	var wg sync.WaitGroup
	claimed := make([]int, 2)
	for i := range claimed {
		relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table, Batch: 50})
		wg.Go(func() { claimed[i] = drain(t, relay) })
	}
	wg.Wait()
	if claimed[0]+claimed[1] != rows {
		t.Fatalf("relays claimed %v rows, want %d in all", claimed, rows)
	}
	counts := queueCounts(t, rr, "default")
	if len(counts) != rows {
		t.Fatalf("queue holds %d distinct jids, want %d", len(counts), rows)
	}
	for _, jid := range jids {
		if counts[jid] != 1 {
			t.Fatalf("jid %s is in the queue %d times", jid, counts[jid])
		}
	}
	var undelivered int
	if err := db.QueryRow("SELECT count(*) FROM " + table + " WHERE delivered_at IS NULL").Scan(&undelivered); err != nil {
		t.Fatal(err)
	}
	if undelivered != 0 {
		t.Fatalf("%d rows not marked delivered", undelivered)
	}
	t.Logf("relay claims: %v", claimed)
}

// TestRedisDownRowsWaitThenDeliver: while Redis cannot be reached, passes fail with
// ErrRedisUnavailable and rows wait uncounted (an outage longer than MaxAttempts passes
// parks nothing); once a reachable Redis is there, every row is delivered.
func TestRedisDownRowsWaitThenDeliver(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { down.Close() })
	const maxAttempts = 2
	cfg := &outbox.RelayConfig{Table: table, MaxAttempts: maxAttempts}
	relay := outbox.NewRelay(db, sidekiq.NewClient(down, nil), cfg)
	jids := pushInTx(t, db, table, 2, true)
	for pass := 1; pass <= maxAttempts+2; pass++ {
		if _, err := relay.RunOnce(context.Background()); !errors.Is(err, outbox.ErrRedisUnavailable) {
			t.Fatalf("pass %d: err = %v, want ErrRedisUnavailable", pass, err)
		}
		for _, jid := range jids {
			if s := state(t, db, table, jid); s.attempts != 0 || s.parked || s.delivered {
				t.Fatalf("pass %d: row %+v, want waiting with no attempt counted", pass, s)
			}
		}
	}
	up := testsuite.RealRedis(t)
	if _, err := outbox.NewRelay(db, sidekiq.NewClient(up.Client, nil), cfg).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, jid := range jids {
		if s := state(t, db, table, jid); !s.delivered {
			t.Fatalf("row %s not delivered once Redis is up: %+v", jid, s)
		}
	}
	if n := up.Client.LLen(context.Background(), "queue:default").Val(); n != int64(len(jids)) {
		t.Fatalf("queue holds %d jobs, want %d", n, len(jids))
	}
}

// TestRejectedRowParkedAfterMaxAttempts: a push Redis refuses with an error reply (here the
// queue key holds a string, so LPUSH answers WRONGTYPE) counts as an attempt; after
// MaxAttempts the row is parked with the error and later passes leave it alone.
func TestRejectedRowParkedAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rdb := testsuite.RealRedis(t).Client
	if err := rdb.Set(context.Background(), "queue:default", "not a list", 0).Err(); err != nil {
		t.Fatal(err)
	}
	const maxAttempts = 3
	relay := outbox.NewRelay(db, sidekiq.NewClient(rdb, nil), &outbox.RelayConfig{Table: table, MaxAttempts: maxAttempts})
	jids := pushInTx(t, db, table, 2, true)
	for pass := 1; pass <= maxAttempts+1; pass++ {
		n, err := relay.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		wantAttempts, wantParked, wantClaimed := pass, pass >= maxAttempts, 2
		if pass > maxAttempts {
			wantAttempts, wantClaimed = maxAttempts, 0
		}
		if n != wantClaimed {
			t.Fatalf("pass %d claimed %d rows, want %d", pass, n, wantClaimed)
		}
		for _, jid := range jids {
			s := state(t, db, table, jid)
			if s.attempts != wantAttempts || s.parked != wantParked || s.delivered {
				t.Fatalf("pass %d: row %+v, want attempts %d parked %v", pass, s, wantAttempts, wantParked)
			}
			if !s.lastError.Valid || !strings.Contains(s.lastError.String, "WRONGTYPE") {
				t.Fatalf("pass %d: last_error %q does not name Redis's refusal", pass, s.lastError.String)
			}
		}
	}
}

// Push middleware on the relay's Client decides per row: a stopped push (a filter, a unique
// lock collapsing the job) is marked delivered with the reason in last_error, as a direct
// Push would have pushed nothing; a middleware error counts as a failed attempt.
func TestRelayPushMiddlewareOutcomes(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	client := sidekiq.NewClient(rr.Client, nil)
	client.Use(sidekiq.PushFunc(func(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
		var i int
		if err := job.DecodeArgs(&i, new(string)); err != nil {
			return err
		}
		switch i {
		case 1:
			return &sidekiq.PushStoppedError{Reason: "filtered"}
		case 2:
			return errors.New("middleware broke")
		}
		return next(ctx)
	}))
	jids := pushInTx(t, db, table, 3, true)
	if _, err := outbox.NewRelay(db, client, &outbox.RelayConfig{Table: table, MaxAttempts: 5}).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		delivered bool
		attempts  int
		note      string
	}{
		{"pushed", true, 0, ""},
		{"stopped", true, 0, "not pushed: sidekiq: push stopped: filtered"},
		{"middleware error", false, 1, "middleware broke"},
	}
	for i, tc := range tests {
		s := state(t, db, table, jids[i])
		if s.delivered != tc.delivered || s.attempts != tc.attempts || s.parked || s.lastError.String != tc.note {
			t.Errorf("%s: row %+v, want delivered %v attempts %d note %q", tc.name, s, tc.delivered, tc.attempts, tc.note)
		}
	}
	if counts := queueCounts(t, rr, "default"); len(counts) != 1 || counts[jids[0]] != 1 {
		t.Fatalf("queue holds %v, want only %s", counts, jids[0])
	}
}

// With the transaction guard in error mode, Client.Push with an open transaction in the
// context is refused, and the error sends the user to outbox.Push; outbox.Push in the same
// transaction is the way that works.
func TestTxGuardPointsToOutboxPush(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	client := sidekiq.NewClient(rr.Client, nil)
	client.Use(middleware.TxGuard(middleware.GuardError))
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	txCtx := middleware.WithTx(ctx, tx)
	_, err = client.Push(txCtx, "WelcomeEmailJob", []any{1})
	if !errors.Is(err, middleware.ErrInsideTransaction) || !strings.Contains(err.Error(), "outbox.Push") {
		t.Fatalf("Push inside a transaction: %v, want ErrInsideTransaction naming outbox.Push", err)
	}
	if n := rr.Client.LLen(ctx, "queue:default").Val(); n != 0 {
		t.Fatalf("the refused push wrote %d jobs", n)
	}
	inTx, _ := middleware.TxFromContext(txCtx)
	jid, err := outbox.Push(txCtx, inTx, "WelcomeEmailJob", []any{1}, outbox.Table(table))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	drain(t, outbox.NewRelay(db, client, &outbox.RelayConfig{Table: table}))
	if counts := queueCounts(t, rr, "default"); counts[jid] != 1 {
		t.Fatalf("queue holds %v, want %s once (the relay's pushes carry no transaction)", counts, jid)
	}
}

// A unique queue lock on the relay's Client collapses a second row with the same inputs
// into the job already queued, as a direct Push would: the row is marked delivered with a
// note naming the holder, and only the first job is in Redis.
func TestRelayQueueLockCollapses(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	client := sidekiq.NewClient(rr.Client, nil)
	client.Use(locks.QueueLock(rr.Client))
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var jids []string
	for range 2 {
		jid, err := outbox.Push(ctx, tx, "SyncUserJob", []any{map[string]any{"user_id": 7}}, outbox.Table(table))
		if err != nil {
			t.Fatal(err)
		}
		jids = append(jids, jid)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	drain(t, outbox.NewRelay(db, client, &outbox.RelayConfig{Table: table}))
	first, second := state(t, db, table, jids[0]), state(t, db, table, jids[1])
	if !first.delivered || first.lastError.Valid {
		t.Errorf("first row %+v, want delivered without note", first)
	}
	if !second.delivered || second.attempts != 0 || !strings.Contains(second.lastError.String, "not pushed") || !strings.Contains(second.lastError.String, jids[0]) {
		t.Errorf("second row %+v, want delivered with a note naming %s", second, jids[0])
	}
	if counts := queueCounts(t, rr, "default"); len(counts) != 1 || counts[jids[0]] != 1 {
		t.Fatalf("queue holds %v, want only %s", counts, jids[0])
	}
}
