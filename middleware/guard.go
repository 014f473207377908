package middleware

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// GuardMode is what TxGuard does with a push made while a database transaction is open.
// The modes are those of Ruby's sidekiq-transaction_guard.
type GuardMode int

const (
	// GuardError refuses the push: Push returns an *InsideTransactionError and writes
	// nothing. The default, and what tests should use.
	GuardError GuardMode = iota
	// GuardWarn lets the push through and logs a warning on the guard's logger.
	GuardWarn
	// GuardStderr lets the push through and writes the warning to the guard's writer
	// (os.Stderr by default).
	GuardStderr
	// GuardDisabled lets the push through silently.
	GuardDisabled
)

func (m GuardMode) String() string {
	switch m {
	case GuardError:
		return "error"
	case GuardWarn:
		return "warn"
	case GuardStderr:
		return "stderr"
	case GuardDisabled:
		return "disabled"
	}
	return fmt.Sprintf("GuardMode(%d)", int(m))
}

type txKey struct{}

type txMark struct {
	open bool
	tx   *sql.Tx
}

// WithinTransaction returns a context that says a database transaction is open, for code
// that runs inside one (your transaction helper should call it when it begins one). Pushes
// made with it, or a context derived from it, meet TxGuard.
func WithinTransaction(ctx context.Context) context.Context {
	return context.WithValue(ctx, txKey{}, txMark{open: true})
}

// WithTx is WithinTransaction that also carries tx, for code further down that must write
// in the same transaction (the outbox: outbox.Push(ctx, tx, …)); TxFromContext returns it.
// Use the context only until tx commits or rolls back.
func WithTx(ctx context.Context, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, txMark{open: true, tx: tx})
}

// OutsideTransaction returns a context in which no transaction is open, whatever its
// parent says: for after-commit callbacks, and for tests whose fixtures wrap every test
// in a transaction (sidekiq-transaction_guard's allowed level).
func OutsideTransaction(ctx context.Context) context.Context {
	return context.WithValue(ctx, txKey{}, txMark{})
}

// InTransaction reports whether ctx says a database transaction is open.
func InTransaction(ctx context.Context) bool {
	m, _ := ctx.Value(txKey{}).(txMark)
	return m.open
}

// TxFromContext returns the transaction placed in ctx by WithTx, if any.
func TxFromContext(ctx context.Context) (*sql.Tx, bool) {
	m, _ := ctx.Value(txKey{}).(txMark)
	return m.tx, m.open && m.tx != nil
}

// ErrInsideTransaction is matched (errors.Is) by *InsideTransactionError.
var ErrInsideTransaction = errors.New("middleware: push inside an open database transaction")

// InsideTransactionError is the error of a push refused by TxGuard in GuardError mode.
type InsideTransactionError struct {
	Class string
	JID   string
}

func (e *InsideTransactionError) Error() string {
	return fmt.Sprintf("ferry: pushing %s (jid %s) while a database transaction is open: the job can run before "+
		"the transaction commits, or even though it rolls back; enqueue it in the same transaction with "+
		"outbox.Push(ctx, tx, …) instead, or push after commit (or mark the push deliberate with "+
		"middleware.OutsideTransaction(ctx))", e.Class, e.JID)
}

// Is matches ErrInsideTransaction and sidekiq.ErrPushStopped.
func (e *InsideTransactionError) Is(target error) bool {
	return target == ErrInsideTransaction || target == sidekiq.ErrPushStopped
}

// GuardMiddleware is the push middleware made by TxGuard.
type GuardMiddleware struct {
	sidekiq.MiddlewareDefaults
	mode    GuardMode
	classes map[string]GuardMode
	log     *zap.Logger
	w       io.Writer
}

// GuardOption configures TxGuard.
type GuardOption func(*GuardMiddleware)

// GuardClass sets the mode for one job class (the ActiveJob class for ActiveJob jobs), as
// sidekiq_options transaction_guard: does in Ruby. GuardClass(c, GuardDisabled) opts a
// class out: for jobs that are safe to run early, such as ones that only read.
func GuardClass(class string, mode GuardMode) GuardOption {
	return func(g *GuardMiddleware) { g.classes[class] = mode }
}

// GuardLogger sets the logger of GuardWarn. Default: no logging.
func GuardLogger(l *zap.Logger) GuardOption {
	return func(g *GuardMiddleware) {
		if l != nil {
			g.log = l
		}
	}
}

// GuardWriter sets where GuardStderr writes. Default: os.Stderr.
func GuardWriter(w io.Writer) GuardOption {
	return func(g *GuardMiddleware) {
		if w != nil {
			g.w = w
		}
	}
}

// TxGuard returns a push middleware that catches pushes made while the context says a
// database transaction is open (see WithinTransaction and WithTx). Such a job may run
// before the transaction commits (and not find its rows) or after it rolls back (and act
// on nothing); the outbox package is the safe way. mode says what happens: refuse the push
// (GuardError), warn (GuardWarn, GuardStderr) or nothing (GuardDisabled). Pushes outside a
// transaction always pass. Install it on the Client (or Server) that application code
// pushes with:
//
//	client.Use(middleware.TxGuard(middleware.GuardError, middleware.GuardClass("AuditJob", middleware.GuardDisabled)))
//
// Go has no per-goroutine connection to inspect, so detection relies on the context alone:
// a transaction your code opens without marking the context goes unseen.
func TxGuard(mode GuardMode, opts ...GuardOption) *GuardMiddleware {
	g := &GuardMiddleware{mode: mode, classes: map[string]GuardMode{}, log: zap.NewNop(), w: os.Stderr}
	for _, o := range opts {
		o(g)
	}
	return g
}

// InterceptPush implements sidekiq.PushMiddleware.
func (g *GuardMiddleware) InterceptPush(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	if !InTransaction(ctx) {
		return next(ctx)
	}
	class := job.HandlerName()
	mode := g.mode
	if m, ok := g.classes[class]; ok {
		mode = m
	}
	err := &InsideTransactionError{Class: class, JID: job.JID}
	switch mode {
	case GuardDisabled:
	case GuardWarn:
		g.log.Warn("job pushed inside a database transaction", logcap.String("class", class), logcap.String("jid", job.JID),
			logcap.String("hint", err.Error()))
	case GuardStderr:
		fmt.Fprintf(g.w, "WARNING: %s\n", err.Error())
	default:
		return err
	}
	return next(ctx)
}
