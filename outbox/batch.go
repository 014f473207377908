package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

const (
	claimSQL = `SELECT id, jid, payload, run_at, attempts FROM %s
WHERE delivered_at IS NULL AND parked_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`
	deliveredSQL = `UPDATE %s SET delivered_at = now() WHERE id = ANY($1)`
	notPushedSQL = `UPDATE %s AS t SET delivered_at = now(), last_error = v.note
FROM unnest($1::bigint[], $2::text[]) AS v(id, note) WHERE t.id = v.id`
	failedSQL = `UPDATE %s AS t SET attempts = t.attempts + 1, last_error = v.err,
parked_at = CASE WHEN v.park THEN now() ELSE NULL END
FROM unnest($1::bigint[], $2::text[], $3::bool[]) AS v(id, err, park) WHERE t.id = v.id`
)

type row struct {
	id       int64
	jid      string
	payload  string
	runAt    sql.NullTime
	attempts int
}

// outcomes collects what one pass does with its rows.
type outcomes struct {
	delivered []int64 // pushed now, or by an earlier relay (marker held)
	// not pushed because push middleware stopped the push; marked delivered with a note
	stoppedIDs   []int64
	stoppedNotes []string
	// refused: attempts+1, parked when park is set
	failedIDs  []int64
	failedErrs []string
	failedPark []bool
	waiting    int   // no reply from Redis: left as they were
	waitErr    error // the first no-reply error
}

// RunOnce claims one batch of undelivered rows, pushes them to Redis in one pipelined round
// trip (sidekiq.Client.PushJobs), each with its delivery marker, and records every row's
// outcome, all in one transaction whose row locks keep other relays off the batch until
// it is marked. It returns how many rows it claimed.
//
// Outcomes per row:
//   - pushed, or its delivery marker already held (an earlier relay pushed it and died
//     before marking): marked delivered;
//   - stopped by the Client's push middleware (a unique lock collapsing it into a job
//     already queued, a filter): marked delivered, with the reason in last_error, as a
//     direct Client.Push would have pushed nothing either;
//   - refused by Redis (an error reply) or failed by push middleware: attempts+1 and
//     last_error; parked once attempts reach MaxAttempts;
//   - unreadable payload: parked at once;
//   - no reply from Redis (unreachable, timed out), or a reply saying it cannot take
//     writes now (LOADING after a restart, BUSY, READONLY, OOM, MISCONF, ...): left
//     untouched, attempts not counted, so an outage of any length parks nothing; RunOnce
//     then returns an error matching ErrRedisUnavailable after recording the other rows.
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
	if len(rows) == 0 {
		return 0, tx.Commit()
	}
	out := r.deliver(ctx, rows)
	if ctx.Err() != nil {
		// Rolled back: rows pushed in this pass hold their markers, so the next pass
		// marks them without pushing again.
		return 0, fmt.Errorf("outbox: relay: %w", ctx.Err())
	}
	if err := r.record(ctx, tx, out); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox: relay commit: %w", err)
	}
	if out.waiting > 0 {
		return len(rows), fmt.Errorf("%w: %d of %d rows wait: %w", ErrRedisUnavailable, out.waiting, len(rows), out.waitErr)
	}
	return len(rows), nil
}

// ErrRedisUnavailable is matched by RunOnce's error when Redis could not be reached; the
// undelivered rows wait, their attempts not counted.
var ErrRedisUnavailable = errors.New("outbox: redis unavailable")

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

// deliver pushes the rows' jobs in one PushJobs call and sorts the outcomes.
func (r *Relay) deliver(ctx context.Context, rows []row) *outcomes {
	out := &outcomes{}
	fail := func(rw row, err error, bad bool) {
		park := bad || rw.attempts+1 >= r.cfg.MaxAttempts
		r.cfg.Logger.Warn("outbox delivery failed", logcap.String("jid", rw.jid), zap.Int("attempt", rw.attempts+1),
			zap.Bool("parked", park), zap.Error(err))
		out.failedIDs = append(out.failedIDs, rw.id)
		out.failedErrs = append(out.failedErrs, err.Error())
		out.failedPark = append(out.failedPark, park)
	}
	pushes := make([]sidekiq.JobPush, 0, len(rows))
	sent := make([]row, 0, len(rows))
	markers := make([]string, 0, len(rows))
	for _, rw := range rows {
		job, err := sidekiq.ParseJobString(rw.payload)
		if err == nil && job.JID != rw.jid {
			err = fmt.Errorf("payload jid %q, row jid %q", job.JID, rw.jid)
		}
		if err != nil {
			fail(rw, fmt.Errorf("%w: %w", errBadPayload, err), true)
			continue
		}
		p := sidekiq.JobPush{Job: job, Guards: []sidekiq.PushGuard{DeliveryGuard(rw.jid)}}
		markers = append(markers, p.Guards[0].Key)
		if rw.runAt.Valid {
			p.At = rw.runAt.Time
		}
		pushes = append(pushes, p)
		sent = append(sent, rw)
	}
	if len(pushes) == 0 {
		return out
	}
	results, _ := r.client.PushJobs(ctx, pushes) // the error repeats the per-job ones
	for i, res := range results {
		rw := sent[i]
		var held *sidekiq.PushStoppedError
		switch {
		case res.Err == nil:
			out.delivered = append(out.delivered, rw.id)
		case errors.As(res.Err, &held) && held.Key == markers[i]:
			r.cfg.Logger.Debug("outbox job already pushed", logcap.String("jid", rw.jid))
			out.delivered = append(out.delivered, rw.id)
		case errors.Is(res.Err, sidekiq.ErrPushStopped):
			r.cfg.Logger.Info("outbox job not pushed: push middleware stopped it", logcap.String("jid", rw.jid), zap.Error(res.Err))
			out.stoppedIDs = append(out.stoppedIDs, rw.id)
			out.stoppedNotes = append(out.stoppedNotes, "not pushed: "+res.Err.Error())
		case isNoReply(res.Err) || isBusyReply(res.Err):
			out.waiting++
			if out.waitErr == nil {
				out.waitErr = res.Err
			}
		default:
			fail(rw, res.Err, false)
		}
	}
	return out
}

// isNoReply reports whether err means Redis did not answer (as opposed to a Redis error
// reply, or a push middleware's own verdict): unreachable, reset, timed out, or the
// context ended. Such rows wait without counting an attempt.
func isNoReply(err error) bool {
	var reply redis.Error
	if errors.As(err, &reply) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, sidekiq.ErrNoReply) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// busyReplies start the Redis error replies that say the server cannot take writes at the
// moment (loading its data after a restart, running a long script, a read-only replica
// after a failover, out of memory, failing to persist, cluster not ready), not that it
// refuses this job. Rows wait for them, uncounted, as when Redis does not answer.
var busyReplies = []string{"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "MISCONF", "OOM", "NOREPLICAS"}

func isBusyReply(err error) bool {
	for _, p := range busyReplies {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// record writes the outcomes of a pass in the claim transaction.
func (r *Relay) record(ctx context.Context, tx *sql.Tx, out *outcomes) error {
	if len(out.delivered) > 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(deliveredSQL, r.cfg.Table), out.delivered); err != nil {
			return fmt.Errorf("outbox: relay mark delivered: %w", err)
		}
	}
	if len(out.stoppedIDs) > 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(notPushedSQL, r.cfg.Table), out.stoppedIDs, out.stoppedNotes); err != nil {
			return fmt.Errorf("outbox: relay mark stopped pushes: %w", err)
		}
	}
	if len(out.failedIDs) > 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(failedSQL, r.cfg.Table), out.failedIDs, out.failedErrs, out.failedPark); err != nil {
			return fmt.Errorf("outbox: relay record failures: %w", err)
		}
	}
	return nil
}
