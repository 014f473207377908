package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

func TestTxGuardModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode      middleware.GuardMode
		wantErr   bool
		wantLog   bool
		wantWrite bool
	}{
		{middleware.GuardError, true, false, false},
		{middleware.GuardWarn, false, true, false},
		{middleware.GuardStderr, false, false, true},
		{middleware.GuardDisabled, false, false, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			t.Parallel()
			rdb, _ := testutil.NewEmbeddedRedis(t)
			core, logs := observer.New(zap.DebugLevel)
			var stderr bytes.Buffer
			client := sidekiq.NewClient(rdb, nil)
			client.Use(middleware.TxGuard(tc.mode, middleware.GuardLogger(zap.New(core)), middleware.GuardWriter(&stderr),
				middleware.GuardClass("AuditJob", middleware.GuardDisabled)))
			ctx := context.Background()

			// Outside a transaction every mode passes silently.
			if _, err := client.Push(ctx, "HardWorker", []any{1}); err != nil {
				t.Fatalf("push outside a transaction: %v", err)
			}
			tx := middleware.WithinTransaction(ctx)
			jid, err := client.Push(tx, "HardWorker", []any{2})
			if got := err != nil; got != tc.wantErr {
				t.Fatalf("push inside: err %v, want error %v", err, tc.wantErr)
			}
			wantQueued := int64(2)
			if tc.wantErr {
				wantQueued = 1
				if jid != "" || !errors.Is(err, middleware.ErrInsideTransaction) || !errors.Is(err, sidekiq.ErrPushStopped) {
					t.Fatalf("refused push: jid %q err %v", jid, err)
				}
				for _, w := range []string{"HardWorker", "transaction is open", "outbox.Push(ctx, tx"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("message %q lacks %q", err, w)
					}
				}
			}
			if got := logs.FilterMessage("job pushed inside a database transaction").Len() == 1; got != tc.wantLog {
				t.Errorf("warning logged: %v, want %v (%v)", got, tc.wantLog, logs.All())
			}
			if got := strings.Contains(stderr.String(), "WARNING: ferry: pushing HardWorker"); got != tc.wantWrite {
				t.Errorf("stderr %q", stderr.String())
			}
			// The opted-out class passes in every mode, and so does a deliberate push.
			if _, err := client.Push(tx, "AuditJob", nil); err != nil {
				t.Fatalf("opted-out class: %v", err)
			}
			if _, err := client.Push(middleware.OutsideTransaction(tx), "HardWorker", []any{3}); err != nil {
				t.Fatalf("OutsideTransaction: %v", err)
			}
			if n := llen(t, rdb, "queue:default"); n != wantQueued+2 {
				t.Fatalf("%d jobs queued, want %d", n, wantQueued+2)
			}
		})
	}
}

func TestTxContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if middleware.InTransaction(ctx) {
		t.Fatal("a bare context is not in a transaction")
	}
	if _, ok := middleware.TxFromContext(middleware.WithinTransaction(ctx)); ok {
		t.Fatal("WithinTransaction carries no *sql.Tx")
	}
	if !middleware.InTransaction(middleware.WithTx(ctx, nil)) {
		t.Fatal("WithTx marks the context")
	}
	if middleware.InTransaction(middleware.OutsideTransaction(middleware.WithinTransaction(ctx))) {
		t.Fatal("OutsideTransaction clears the mark")
	}
}
