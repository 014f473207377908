package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

type PaymentInputs struct {
	OrderID int64 `json:"order_id"`
	Cents   int64 `json:"cents"`
}

type Charge struct {
	ID    string
	Cents int64
	At    time.Time
}

// fakePayments is the outside world of the payment story: a card processor and a mailer.
type fakePayments struct {
	mu          sync.Mutex
	charges     []Charge
	invoices    []string
	failInvoice atomic.Int32 // how many invoice sends still fail
}

func (p *fakePayments) charge(orderID, cents int64) Charge {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := Charge{ID: fmt.Sprintf("ch_%d_%d", orderID, len(p.charges)+1), Cents: cents, At: time.Now().UTC().Truncate(time.Millisecond)}
	p.charges = append(p.charges, c)
	return c
}

func (p *fakePayments) sendInvoice(orderID int64, c Charge) error {
	if p.failInvoice.Add(-1) >= 0 {
		return errors.New("smtp: 451 try again later")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.invoices = append(p.invoices, fmt.Sprintf("order %d: %s %d cents at %s", orderID, c.ID, c.Cents, c.At.Format(time.RFC3339Nano)))
	return nil
}

// Issue #5, check 3: a payment job charges, then sending the invoice fails; on the real
// retry the charge is not repeated (its stored result is used) and the invoice is sent.
// The step record exists between the attempts and is gone after success.
func TestPaymentStoryChargesOnce(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	rdb := db.Client
	ctx := context.Background()
	pay := &fakePayments{}
	pay.failInvoice.Store(1)

	steps := middleware.Steps(rdb, nil)
	cfg := fastRetries()
	cfg.OnDeath = steps.OnDeath
	srv := sidekiq.NewServer(rdb, cfg)
	srv.Use(steps)
	var attempts atomic.Int32
	recordKept := make(chan bool, 4)
	finished := make(chan struct{}, 1)
	srv.Handle("PaymentWorker", middleware.Inputs(func(ctx context.Context, job *sidekiq.Job, in PaymentInputs) error {
		if attempts.Add(1) == 2 {
			n, err := rdb.HExists(ctx, steps.Key(job.JID), "charge").Result()
			if err != nil {
				return err
			}
			recordKept <- n
		}
		c, err := middleware.Step(ctx, "charge", func(context.Context) (Charge, error) {
			return pay.charge(in.OrderID, in.Cents), nil
		})
		if err != nil {
			return err
		}
		if _, err := middleware.Step(ctx, "invoice", func(context.Context) (bool, error) {
			return true, pay.sendInvoice(in.OrderID, c)
		}); err != nil {
			return fmt.Errorf("sending invoice: %w", err)
		}
		finished <- struct{}{}
		return nil
	}))
	jid, err := middleware.Enqueue(ctx, srv.Client(), "PaymentWorker", PaymentInputs{OrderID: 7, Cents: 1999})
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	receive(t, "the payment job to finish", finished)
	if !receive(t, "the second attempt", recordKept) {
		t.Fatal("the charge's record was not kept for the retry")
	}

	pay.mu.Lock()
	charges, invoices := append([]Charge(nil), pay.charges...), append([]string(nil), pay.invoices...)
	pay.mu.Unlock()
	if attempts.Load() != 2 {
		t.Fatalf("%d attempts, want 2 (one failure, one retry)", attempts.Load())
	}
	if len(charges) != 1 {
		t.Fatalf("the card was charged %d times: %+v", len(charges), charges)
	}
	want := fmt.Sprintf("order 7: %s 1999 cents at %s", charges[0].ID, charges[0].At.Format(time.RFC3339Nano))
	if len(invoices) != 1 || invoices[0] != want {
		t.Fatalf("invoices %q, want one with the original charge %q", invoices, want)
	}
	waitFor(t, "the step record to be deleted", func() bool {
		n, err := rdb.Exists(ctx, steps.Key(jid)).Result()
		return err == nil && n == 0
	})
	if zcard(t, rdb, "retry") != 0 || zcard(t, rdb, "dead") != 0 {
		t.Fatal("the finished job left a retry or dead entry")
	}
}

// Records are kept with a TTL, deleted on Discard and by OnDeath, kept on RetryIn; Step
// without the middleware refuses to run.
func TestStepRecordLifecycle(t *testing.T) {
	t.Parallel()
	rdb, mr := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	steps := middleware.Steps(rdb, &middleware.StepsConfig{Namespace: "app", TTL: time.Hour})
	if steps.Key("abc") != "app:ferry:steps:abc" {
		t.Fatalf("key %q", steps.Key("abc"))
	}

	ran := false
	if _, err := middleware.Step(ctx, "x", func(context.Context) (int, error) { ran = true; return 1, nil }); !errors.Is(err, middleware.ErrNoSteps) || ran {
		t.Fatalf("Step without Steps: %v (ran %v)", err, ran)
	}

	run := func(jid string, result error) {
		job := jobWithArgs(t, "W", `[]`)
		job.JID = jid
		err := steps.InterceptRun(ctx, job, func(ctx context.Context) error {
			n, err := middleware.Step(ctx, "one", func(context.Context) (map[string]int, error) { return map[string]int{"a": 1}, nil })
			if err != nil || n["a"] != 1 {
				t.Fatalf("step: %v %v", n, err)
			}
			return result
		})
		if err != result {
			t.Fatalf("InterceptRun changed the error: %v", err)
		}
	}
	run("j1", errors.New("later step failed"))
	if !mr.Exists("app:ferry:steps:j1") {
		t.Fatal("a failed run must keep its record")
	}
	if ttl := mr.TTL("app:ferry:steps:j1"); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL %v, want up to 1h", ttl)
	}
	run("j2", sidekiq.RetryIn(time.Second, nil))
	if !mr.Exists("app:ferry:steps:j2") {
		t.Fatal("a rescheduled run must keep its record")
	}
	run("j3", sidekiq.Discard(errors.New("bad")))
	if mr.Exists("app:ferry:steps:j3") {
		t.Fatal("a discarded job's record must be deleted")
	}
	dead := jobWithArgs(t, "W", `[]`)
	dead.JID = "j1"
	steps.OnDeath(ctx, dead, errors.New("boom"))
	if mr.Exists("app:ferry:steps:j1") {
		t.Fatal("OnDeath must delete the record")
	}
	// A stored result is returned without running fn again.
	job := jobWithArgs(t, "W", `[]`)
	job.JID = "j2"
	_ = steps.InterceptRun(ctx, job, func(ctx context.Context) error {
		n, err := middleware.Step(ctx, "one", func(context.Context) (map[string]int, error) {
			t.Fatal("fn ran again although its result is stored")
			return nil, nil
		})
		if err != nil || n["a"] != 1 {
			t.Fatalf("stored result: %v %v", n, err)
		}
		return nil
	})
	if mr.Exists("app:ferry:steps:j2") {
		t.Fatal("a successful job's record must be deleted")
	}
}
