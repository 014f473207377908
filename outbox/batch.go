package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/sidekiq"
)

const (
	claimSQL = `SELECT id, jid, payload, run_at, attempts FROM %s
WHERE delivered_at IS NULL AND parked_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`
	deliveredSQL = `UPDATE %s SET delivered_at = now() WHERE id = ANY($1)`
	failedSQL    = `UPDATE %s SET attempts = attempts + 1, last_error = $2,
parked_at = CASE WHEN $3 THEN now() ELSE NULL END WHERE id = $1`
)

type row struct {
	id       int64
	jid      string
	payload  string
	runAt    sql.NullTime
	attempts int
}

// RunOnce claims one batch of undelivered rows, pushes each to Redis and records the
// outcome, all in one transaction. It returns how many rows it claimed. A row that Redis
// refuses (an error reply) gets attempts+1 and last_error, and is parked once attempts
// reach MaxAttempts; a row whose payload cannot be parsed is parked at once. When Redis
// cannot be reached (no reply at all), the pass stops: the rows delivered so far are marked,
// the rest wait uncounted for the next pass, and the error (matching ErrRedisUnavailable)
// is returned, so an outage of any length parks nothing.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: relay begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	rows, err := r.claim(ctx, tx)
	if err != nil {
		return 0, err
	}
	var delivered []int64
	var unavailable error
	for _, rw := range rows {
		perr := r.deliver(ctx, rw)
		if perr == nil {
			delivered = append(delivered, rw.id)
			continue
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("outbox: relay: %w", ctx.Err())
		}
		if !errors.Is(perr, errBadPayload) && !isRedisReply(perr) {
			unavailable = fmt.Errorf("%w: %d of %d rows wait: %w", ErrRedisUnavailable, len(rows)-len(delivered), len(rows), perr)
			break
		}
		park := rw.attempts+1 >= r.cfg.MaxAttempts || errors.Is(perr, errBadPayload)
		r.cfg.Logger.Warn("outbox delivery failed", zap.String("jid", rw.jid), zap.Bool("parked", park), zap.Error(perr))
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(failedSQL, r.cfg.Table), rw.id, perr.Error(), park); err != nil {
			return 0, fmt.Errorf("outbox: relay record failure of %s: %w", rw.jid, err)
		}
	}
	if len(delivered) > 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(deliveredSQL, r.cfg.Table), delivered); err != nil {
			return 0, fmt.Errorf("outbox: relay mark delivered: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox: relay commit: %w", err)
	}
	return len(rows), unavailable
}

// ErrRedisUnavailable is matched by RunOnce's error when Redis could not be reached; the
// undelivered rows wait, their attempts not counted.
var ErrRedisUnavailable = errors.New("outbox: redis unavailable")

// isRedisReply reports whether err is an error reply from Redis (it refused the push),
// as opposed to no reply at all (connection refused, reset, timed out).
func isRedisReply(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
}

func (r *Relay) claim(ctx context.Context, tx *sql.Tx) ([]row, error) {
	q, err := tx.QueryContext(ctx, fmt.Sprintf(claimSQL, r.cfg.Table), r.cfg.Batch)
	if err != nil {
		return nil, fmt.Errorf("outbox: relay claim: %w", err)
	}
	defer q.Close()
	var out []row
	for q.Next() {
		var rw row
		if err := q.Scan(&rw.id, &rw.jid, &rw.payload, &rw.runAt, &rw.attempts); err != nil {
			return nil, fmt.Errorf("outbox: relay claim: %w", err)
		}
		out = append(out, rw)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("outbox: relay claim: %w", err)
	}
	return out, nil
}

var errBadPayload = errors.New("outbox: unreadable payload")

// deliver pushes one row's job with its delivery marker. A held marker means an earlier
// relay pushed the job and died before marking the row: the row counts as delivered. So does
// a push stopped by push middleware (for example a unique lock already held).
func (r *Relay) deliver(ctx context.Context, rw row) error {
	job, err := sidekiq.ParseJobString(rw.payload)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadPayload, err)
	}
	if job.JID != rw.jid {
		return fmt.Errorf("%w: payload jid %q, row jid %q", errBadPayload, job.JID, rw.jid)
	}
	var opts []sidekiq.PushOption
	if rw.runAt.Valid && rw.runAt.Time.After(time.Now()) {
		opts = append(opts, sidekiq.At(rw.runAt.Time))
	}
	_, err = r.client.PushJob(sidekiq.WithPushGuards(ctx, DeliveryGuard(rw.jid)), job, opts...)
	if errors.Is(err, sidekiq.ErrPushStopped) {
		r.cfg.Logger.Debug("outbox job already pushed", zap.String("jid", rw.jid), zap.Error(err))
		return nil
	}
	return err
}
