package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/rediskey"
	"github.com/ferryhq/ferry/sidekiq"
)

// MarkerPrefix starts the Redis key of a delivery marker; the jid follows (see
// DeliveryGuard). The marker is set by the same Lua call that pushes the job, so a job
// whose marker exists was pushed.
const MarkerPrefix = "ferry:outbox:delivered:"

// MarkerTTL is how long a delivery marker is kept: a relay that died after pushing must
// come back within it for the row not to be delivered twice.
const MarkerTTL = 7 * 24 * time.Hour

// DeliveryGuard is the PushGuard a relay attaches to the push of the job with this jid.
// Its key is MarkerPrefix and the jid when the jid is up to 64 letters, digits, '-' and
// '_' (every jid Push, Sidekiq and Ferry make), else MarkerPrefix, "h:" and the jid's hex
// SHA-256: a row's jid may come from any program writing the table, and must not make a
// long key or one outside MarkerPrefix.
func DeliveryGuard(jid string) sidekiq.PushGuard {
	return sidekiq.PushGuard{Key: MarkerPrefix + rediskey.Part(jid), TTL: MarkerTTL}
}

// RelayConfig configures a Relay. The zero value (or nil) means every default.
type RelayConfig struct {
	// Table is the outbox table. Default: DefaultTable.
	Table string
	// Interval is the pause between polls when the table has nothing to deliver: the
	// longest a committed row waits when no notification arrives. Default: 200ms.
	Interval time.Duration
	// DisableListen turns off LISTEN/NOTIFY. By default (false) a relay on the pgx
	// driver holds one extra connection LISTENing on the table's channel (NotifyChannel),
	// where CreateTable's trigger announces every committed insert, and runs a pass as
	// soon as one is announced; polling every Interval remains the fallback. With another
	// driver the relay only polls.
	DisableListen bool
	// Batch is how many rows one transaction claims. Default: 500.
	Batch int
	// MaxAttempts is how many failed deliveries park a row. Default: 10.
	MaxAttempts int
	// Logger receives delivery errors. Default: no logging.
	Logger *zap.Logger
}

func (c *RelayConfig) withDefaults() RelayConfig {
	var out RelayConfig
	if c != nil {
		out = *c
	}
	if out.Table == "" {
		out.Table = DefaultTable
	}
	if out.Interval <= 0 {
		out.Interval = 200 * time.Millisecond
	}
	if out.Batch <= 0 {
		out.Batch = 500
	}
	if out.MaxAttempts <= 0 {
		out.MaxAttempts = 10
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	return out
}

// Relay delivers committed outbox rows to Redis through a sidekiq.Client. Run it beside
// the server; several relays may share a table.
type Relay struct {
	db     *sql.DB
	client *sidekiq.Client
	cfg    RelayConfig

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRelay returns a Relay reading db and pushing through client. A nil cfg means every
// default.
func NewRelay(db *sql.DB, client *sidekiq.Client, cfg *RelayConfig) *Relay {
	return &Relay{db: db, client: client, cfg: cfg.withDefaults()}
}

// Start runs the relay in a goroutine until Stop or until ctx ends.
func (r *Relay) Start(ctx context.Context) error {
	if err := checkTable(r.cfg.Table); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		return errors.New("outbox: relay already started")
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			r.cfg.Logger.Error("outbox relay stopped", zap.Error(err))
		}
	}(r.done)
	return nil
}

// Stop ends a started relay and waits for it to return, or for ctx. A batch in progress is
// finished (pushed and marked) first; that takes one Redis round trip and a few
// PostgreSQL statements. If ctx ends sooner, Stop returns and the batch completes in the
// background (or, if the process exits, is rolled back: the jobs it pushed hold their
// delivery markers, so the next pass of any relay marks them without pushing again).
func (r *Relay) Stop(ctx context.Context) error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("outbox: relay stop: %w", ctx.Err())
	}
}

// Run delivers rows until ctx ends, then returns ctx's error. A full batch is followed at
// once by the next; otherwise the relay waits Interval, or less when a notification
// announces new rows (see DisableListen). Database errors are logged and
// retried after Interval. A batch in progress when ctx ends is finished before Run
// returns, so that stopping a relay does not leave pushed rows unmarked.
func (r *Relay) Run(ctx context.Context) error {
	if err := checkTable(r.cfg.Table); err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	if !r.cfg.DisableListen {
		lctx, cancel := context.WithCancel(ctx)
		listening := make(chan struct{})
		go func() {
			defer close(listening)
			r.listen(lctx, wake)
		}()
		defer func() { cancel(); <-listening }()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-wake:
		}
		n, err := r.RunOnce(context.WithoutCancel(ctx))
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("outbox relay batch failed", zap.Error(err))
		}
		wait := r.cfg.Interval
		if err == nil && n >= r.cfg.Batch {
			wait = 0
		}
		timer.Reset(wait)
	}
}
