package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
)

// An Option changes how Push writes a job.
type Option func(*pushSettings)

type pushSettings struct {
	table string
	queue string
	at    time.Time
	in    time.Duration
	hasIn bool
	retry sidekiq.RetryPolicy
}

// Table writes to the named outbox table instead of DefaultTable.
func Table(name string) Option { return func(s *pushSettings) { s.table = name } }

// Queue sets the job's queue. Default: "default".
func Queue(name string) Option { return func(s *pushSettings) { s.queue = name } }

// At schedules the job for t: the relay puts it in the schedule set.
func At(t time.Time) Option { return func(s *pushSettings) { s.at, s.hasIn = t, false } }

// In schedules the job d after Push is called.
func In(d time.Duration) Option { return func(s *pushSettings) { s.in, s.hasIn = d, true } }

// Retry sets the job's retry field. Default: true.
func Retry(p sidekiq.RetryPolicy) Option { return func(s *pushSettings) { s.retry = p } }

const insertSQL = `INSERT INTO %s (jid, payload, run_at) VALUES ($1, $2, $3)`

// Push writes a job of the given Ruby class to the outbox inside tx and returns its jid.
// The job reaches Redis only if tx commits, when a Relay delivers it. The payload is the
// complete Sidekiq job (new jid, queue "default" unless Queue is given, retry true,
// created_at now); enqueued_at is set by the push.
func Push(ctx context.Context, tx *sql.Tx, class string, args []any, opts ...Option) (string, error) {
	s := pushSettings{table: DefaultTable}
	for _, o := range opts {
		o(&s)
	}
	if err := checkTable(s.table); err != nil {
		return "", err
	}
	if class == "" {
		return "", fmt.Errorf("outbox: push: class is empty")
	}
	raw, err := sidekiq.EncodeArgs(args)
	if err != nil {
		return "", fmt.Errorf("outbox: push %s: %w", class, err)
	}
	now := time.Now()
	job := &sidekiq.Job{Class: class, JID: sidekiq.NewJID(), Queue: s.queue, Args: raw, Retry: s.retry, CreatedAt: now}
	if job.Queue == "" {
		job.Queue = "default"
	}
	if !job.Retry.IsSet() {
		job.Retry = sidekiq.RetryTrue()
	}
	var runAt sql.NullTime
	switch {
	case s.hasIn && s.in > 0:
		runAt = sql.NullTime{Time: now.Add(s.in), Valid: true}
	case !s.hasIn && s.at.After(now):
		runAt = sql.NullTime{Time: s.at, Valid: true}
	}
	payload := job.AppendJSON(nil, sidekiq.TimeSeconds)
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(insertSQL, s.table), job.JID, string(payload), runAt); err != nil {
		return "", fmt.Errorf("outbox: push %s: insert into %s: %w", class, s.table, err)
	}
	return job.JID, nil
}
