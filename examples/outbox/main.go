// Command outbox shows the transactional outbox: a sign-up creates a user and enqueues its
// welcome email in one PostgreSQL transaction, so the email is sent if and only if the
// user exists. A second sign-up rolls back after enqueueing, and no email is ever sent for
// it. A relay moves committed jobs to Redis; a Ferry server runs WelcomeEmailJob, whose Go
// handler "sends" the email (prints it).
//
// It needs PostgreSQL (POSTGRES_URL; default the local "test" database). With no
// REDIS_URL it uses an embedded Redis:
//
//	go run ./examples/outbox            # runs until Ctrl-C
//	go run ./examples/outbox -once      # exits once the email is sent
//	REDIS_URL=redis://127.0.0.1:6379/5 go run ./examples/outbox -once
//
// OUTBOX_TABLE and USERS_TABLE name its tables (default ferry_outbox and example_users).
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
)

// config is what main reads from flags and the environment.
type config struct {
	postgresURL string
	redisURL    string // empty: embedded Redis
	outboxTable string
	usersTable  string
	once        bool // exit after the welcome email is sent
}

func main() {
	cfg := config{
		postgresURL: envOr("POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"),
		redisURL:    os.Getenv("REDIS_URL"),
		outboxTable: envOr("OUTBOX_TABLE", outbox.DefaultTable),
		usersTable:  envOr("USERS_TABLE", "example_users"),
	}
	flag.BoolVar(&cfg.once, "once", false, "exit after the welcome email is sent")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "outbox example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	db, err := sql.Open("pgx", cfg.postgresURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("PostgreSQL at POSTGRES_URL: %w", redact.Error(err, cfg.postgresURL))
	}
	rdb, cleanup, err := connectRedis(cfg.redisURL)
	if err != nil {
		return err
	}
	defer cleanup()

	// 1. The schema: the application's table and the outbox table.
	if err := outbox.CreateTable(ctx, db, cfg.outboxTable); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+cfg.usersTable+` (
		id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create %s: %w", cfg.usersTable, err)
	}

	// 2. The worker side: a Ferry server with a Go handler for the email job.
	out = &lockedWriter{w: out}
	sent := make(chan string, 1)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 2, Queues: []string{"mailers"}})
	srv.Handle("WelcomeEmailJob", sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		var email welcomeEmail
		if err := job.DecodeArgs(&email); err != nil {
			return sidekiq.Discard(err)
		}
		fmt.Fprintf(out, "sending welcome email to %s (user %d, jid %s)\n", email.Email, email.UserID, job.JID)
		select {
		case sent <- email.Email:
		default:
		}
		return nil
	}))
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer stopWithin(srv.Stop, 10*time.Second)

	// 3. The relay: committed outbox rows to Redis, within 100 ms here (default 200 ms).
	relay := outbox.NewRelay(db, sidekiq.NewClient(rdb, nil), &outbox.RelayConfig{Table: cfg.outboxTable, Interval: 100 * time.Millisecond})
	if err := relay.Start(ctx); err != nil {
		return err
	}
	defer stopWithin(relay.Stop, 10*time.Second)

	// 4. Two sign-ups: one commits, one rolls back after enqueueing its email.
	stamp := time.Now().UnixNano()
	alice := fmt.Sprintf("alice+%d@example.com", stamp)
	if err := signUp(ctx, db, cfg, alice, true); err != nil {
		return err
	}
	fmt.Fprintln(out, "signed up", alice, "(committed)")
	bob := fmt.Sprintf("bob+%d@example.com", stamp)
	if err := signUp(ctx, db, cfg, bob, false); err != nil {
		return err
	}
	fmt.Fprintln(out, "signed up", bob, "(rolled back: no user, no email)")

	if !cfg.once {
		fmt.Fprintln(out, "running; Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}
	select {
	case to := <-sent:
		if to != alice {
			return fmt.Errorf("email sent to %s, want %s", to, alice)
		}
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("no welcome email after 30s")
	}
	return nil
}

// welcomeEmail is WelcomeEmailJob's one argument.
type welcomeEmail struct {
	UserID int64  `json:"user_id"`
	Email  string `json:"email"`
}

// signUp creates a user and enqueues its welcome email in one transaction, then commits it
// or (to show the other half of the guarantee) rolls it back.
func signUp(ctx context.Context, db *sql.DB, cfg config, email string, commit bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO `+cfg.usersTable+` (email) VALUES ($1) RETURNING id`, email).Scan(&id); err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	if _, err := outbox.Push(ctx, tx, "WelcomeEmailJob", []any{welcomeEmail{UserID: id, Email: email}},
		outbox.Table(cfg.outboxTable), outbox.Queue("mailers")); err != nil {
		return err
	}
	if !commit {
		return tx.Rollback()
	}
	return tx.Commit()
}

// connectRedis uses url, or an embedded Redis when it is empty.
func connectRedis(url string) (redis.UniversalClient, func(), error) {
	if url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, fmt.Errorf("REDIS_URL: %w", redact.Error(err, url))
		}
		rdb := redis.NewClient(opts)
		return rdb, func() { rdb.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { rdb.Close(); mr.Close() }, nil
}

// stopWithin calls stop with a context that ends after d, independent of the run's
// (possibly cancelled) context.
func stopWithin(stop func(context.Context) error, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = stop(ctx)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// lockedWriter serialises writes from concurrent handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
