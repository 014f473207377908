package outbox

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/zap"
)

// errNotPgx: the database/sql driver is not pgx, so the relay cannot LISTEN and polls.
var errNotPgx = errors.New("outbox: LISTEN needs the pgx driver (github.com/jackc/pgx/v5/stdlib)")

// listenRetry is the pause before a lost LISTEN connection is opened again (at least
// Interval). Polling goes on meanwhile.
const listenRetry = time.Second

// listen keeps one connection LISTENing on the table's channel until ctx ends, and sends
// on wake after every notification, and each time LISTEN starts (rows committed before
// it were announced to no one).
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	retry := time.NewTimer(0)
	defer retry.Stop()
	<-retry.C
	for {
		err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNotPgx) {
			r.cfg.Logger.Info("outbox relay polls only", zap.Error(err))
			return
		}
		r.cfg.Logger.Warn("outbox relay LISTEN connection lost; polling until it is back", zap.Error(err))
		retry.Reset(max(r.cfg.Interval, listenRetry))
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		}
	}
}

// listenOnce holds a connection of the pool for LISTEN until ctx ends or the connection
// fails. The connection is never returned to the pool: it still listens.
func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("outbox: relay listen: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, `LISTEN "`+NotifyChannel(r.cfg.Table)+`"`); err != nil {
			return fmt.Errorf("outbox: relay listen: %w: %w", driver.ErrBadConn, err)
		}
		for {
			signal(wake)
			if _, err := pc.WaitForNotification(ctx); err != nil {
				return fmt.Errorf("outbox: relay listen: %w: %w", driver.ErrBadConn, err)
			}
		}
	})
}

// signal wakes the relay loop without blocking; one pending wake is enough.
func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
