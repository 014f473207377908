package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// One start line and one end line per job, with jid, class, queue, duration, outcome and
// error; the handler's Logger(ctx) carries the job's fields.
func TestLoggingLines(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	lm := middleware.Logging(zap.New(core))
	ctx := context.Background()

	run := func(jid string, fn func(ctx context.Context) error) error {
		job := jobWithArgs(t, "HardWorker", `[]`)
		job.JID = jid
		return lm.InterceptRun(ctx, job, fn)
	}
	if err := run("j-ok", func(ctx context.Context) error {
		middleware.Logger(ctx).Info("charging")
		time.Sleep(2 * time.Millisecond) // a measurable duration
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := run("j-fail", func(context.Context) error { return boom }); err != boom {
		t.Fatalf("the middleware changed the error: %v", err)
	}
	_ = run("j-skip", func(ctx context.Context) error { return middleware.Skip(ctx, "user deleted") })
	_ = run("j-discard", func(context.Context) error { return sidekiq.Discard(boom) })
	_ = run("j-later", func(context.Context) error { return sidekiq.RetryIn(time.Second, nil) })

	byJID := map[string][]observer.LoggedEntry{}
	for _, e := range logs.All() {
		jid, _ := e.ContextMap()["jid"].(string)
		byJID[jid] = append(byJID[jid], e)
	}
	check := func(jid, outcome string, level zapcore.Level, wantErr bool, lines int) {
		t.Helper()
		es := byJID[jid]
		if len(es) != lines {
			t.Fatalf("%s: %d lines, want %d: %v", jid, len(es), lines, es)
		}
		start, end := es[0], es[len(es)-1]
		if start.Message != "job start" || end.Message != "job end" {
			t.Fatalf("%s: lines %q … %q", jid, start.Message, end.Message)
		}
		f := end.ContextMap()
		if f["class"] != "HardWorker" || f["queue"] != "default" || f["outcome"] != outcome || end.Level != level {
			t.Errorf("%s: end line %v at %v, want outcome %s at %v", jid, f, end.Level, outcome, level)
		}
		if _, ok := f["duration"].(time.Duration); !ok {
			t.Errorf("%s: no duration in %v", jid, f)
		}
		if _, has := f["error"]; has != wantErr {
			t.Errorf("%s: error field present %v, want %v", jid, has, wantErr)
		}
	}
	check("j-ok", middleware.OutcomeDone, zap.InfoLevel, false, 3)
	check("j-fail", middleware.OutcomeFailed, zap.WarnLevel, true, 2)
	check("j-skip", middleware.OutcomeSkipped, zap.InfoLevel, false, 3)
	check("j-discard", middleware.OutcomeDiscarded, zap.WarnLevel, true, 2)
	check("j-later", middleware.OutcomeRescheduled, zap.InfoLevel, true, 2)

	if mid := byJID["j-ok"][1]; mid.Message != "charging" || mid.ContextMap()["class"] != "HardWorker" {
		t.Errorf("the handler's logger lacks the job's fields: %v", mid)
	}
	if d := byJID["j-ok"][2].ContextMap()["duration"].(time.Duration); d < 2*time.Millisecond {
		t.Errorf("duration %v, want at least the 2ms the handler took", d)
	}
	if skip := byJID["j-skip"][1]; skip.Message != "job skipped" || skip.ContextMap()["reason"] != "user deleted" {
		t.Errorf("skip line %v", skip)
	}
	if lm.Done() != 1 || lm.Skipped() != 1 || lm.Failed() != 2 {
		t.Errorf("counters done %d skipped %d failed %d", lm.Done(), lm.Skipped(), lm.Failed())
	}
	if middleware.Logger(ctx) == nil {
		t.Fatal("Logger outside a job must be a no-op logger, not nil")
	}
}
