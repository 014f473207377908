package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/activejob"
	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/sidekiq"
)

// exampleRedis starts an in-process Redis for an example.
func exampleRedis() (*redis.Client, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, func() { _ = rdb.Close(); mr.Close() }
}

func stopServer(srv *sidekiq.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Stop(ctx)
}

type UserIndexInputs struct {
	UserID int64  `json:"user_id"`
	Mode   string `json:"mode" default:"full"`
}

// A Go handler for jobs enqueued with named inputs, from Go (Enqueue) or from Ruby
// (UserIndexWorker.perform_async("user_id" => 42)). The payload has no "mode", so the
// default applies.
func ExampleInputs() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()

	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Concurrency: 1})
	ran := make(chan struct{})
	srv.Handle("UserIndexWorker", middleware.Inputs(func(ctx context.Context, job *sidekiq.Job, in UserIndexInputs) error {
		fmt.Printf("indexing user %d (%s)\n", in.UserID, in.Mode)
		close(ran)
		return nil
	}))
	if _, err := srv.Client().Push(ctx, "UserIndexWorker", []any{map[string]any{"user_id": 42}}); err != nil {
		panic(err)
	}
	_ = srv.Start(ctx)
	<-ran
	stopServer(srv)
	// Output: indexing user 42 (full)
}

// Positional arguments are not named inputs: the job goes to the dead set at once, with
// an error that says why.
func ExampleDecodeInputs() {
	job, _ := sidekiq.ParseJob([]byte(`{"class":"UserIndexWorker","args":[42,"full"]}`))
	_, err := middleware.DecodeInputs[UserIndexInputs](job)
	fmt.Println(err)
	job, _ = sidekiq.ParseJob([]byte(`{"class":"UserIndexWorker","args":[{"user_id":"42"}]}`))
	_, err = middleware.DecodeInputs[UserIndexInputs](job)
	fmt.Println(err)
	// Output:
	// UserIndexWorker: args: want one JSON object of named inputs, got 2 positional argument(s) [number, string]; enqueue it as perform_async("name" => value, ...)
	// UserIndexWorker: input "user_id": want int64, got JSON string
}

type OrderInputs struct {
	OrderID int64 `json:"order_id"`
}

// Durable steps: the invoice fails the first time; the retry does not charge again.
func ExampleStep() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()

	steps := middleware.Steps(rdb, nil)
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{
		Concurrency:  1,
		PollInterval: 50 * time.Millisecond,
		RetryDelay:   func(int, error, *sidekiq.Job) time.Duration { return time.Millisecond },
		OnDeath:      steps.OnDeath,
	})
	srv.Use(steps)
	finished := make(chan struct{})
	mailerDown := true
	srv.Handle("PaymentWorker", middleware.Inputs(func(ctx context.Context, job *sidekiq.Job, in OrderInputs) error {
		charge, err := middleware.Step(ctx, "charge", func(ctx context.Context) (string, error) {
			fmt.Println("charging order", in.OrderID)
			return "ch_1", nil
		})
		if err != nil {
			return err
		}
		_, err = middleware.Step(ctx, "invoice", func(ctx context.Context) (bool, error) {
			if mailerDown {
				mailerDown = false
				fmt.Println("mailer down")
				return false, errors.New("smtp unavailable")
			}
			fmt.Println("invoice sent for", charge)
			return true, nil
		})
		if err == nil {
			close(finished)
		}
		return err
	}))
	if _, err := middleware.Enqueue(ctx, srv.Client(), "PaymentWorker", OrderInputs{OrderID: 7}); err != nil {
		panic(err)
	}
	_ = srv.Start(ctx)
	<-finished
	stopServer(srv)
	// Output:
	// charging order 7
	// mailer down
	// invoice sent for ch_1
}

// A Go handler for a Rails job: WelcomeEmailJob.perform_later(42, greeting: "hi").
func ExampleDecodeActiveJob() {
	job, _ := sidekiq.ParseJob([]byte(`{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"WelcomeEmailJob","queue":"default","args":[{"job_class":"WelcomeEmailJob","job_id":"6a3f0c1e-5b8d-4c2a-9f1e-2d3c4b5a6978","provider_job_id":null,"queue_name":"default","priority":null,"arguments":[42,{"_aj_globalid":"gid://app/User/7"},{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"vip"},{"greeting":"hi","_aj_ruby2_keywords":["greeting"]}],"executions":0,"exception_executions":{},"locale":"en","timezone":null,"enqueued_at":"2026-01-02T03:04:05Z"}],"jid":"0123456789abcdef01234567"}`))
	a, err := middleware.DecodeActiveJob(job)
	if err != nil {
		panic(err)
	}
	user := a.Args[1].(activejob.GlobalID)
	fmt.Println(job.HandlerName(), a.Args[0], user.Model(), user.ID(), a.Args[2], a.Keywords["greeting"])
	// Output: WelcomeEmailJob 42 User 7 vip hi
}

// Enqueue a job that Rails runs: ReceiptJob.perform_later(42, :paid, greeting: "hi").
func ExamplePushActiveJob() {
	rdb, done := exampleRedis()
	defer done()
	ctx := context.Background()
	client := sidekiq.NewClient(rdb, nil)
	_, err := middleware.PushActiveJob(ctx, client, "ReceiptJob", "billing",
		[]any{42, activejob.Symbol("paid"), activejob.Keywords{"greeting": "hi"}})
	if err != nil {
		panic(err)
	}
	raw, _ := rdb.LIndex(ctx, "queue:billing", 0).Result()
	job, _ := sidekiq.ParseJobString(raw)
	a, _ := middleware.DecodeActiveJob(job)
	fmt.Println(job.Class)
	fmt.Println(job.Wrapped, string(a.Envelope.Arguments))
	// Output:
	// ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper
	// ReceiptJob [42,{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"paid"},{"greeting":"hi","_aj_ruby2_keywords":["greeting"]}]
}

// The guard refuses a push made inside a database transaction.
func ExampleTxGuard() {
	rdb, done := exampleRedis()
	defer done()
	client := sidekiq.NewClient(rdb, nil)
	client.Use(middleware.TxGuard(middleware.GuardError))

	ctx := middleware.WithinTransaction(context.Background()) // your transaction helper does this
	_, err := client.Push(ctx, "ReceiptWorker", []any{42}, sidekiq.JID("0123456789abcdef01234567"))
	fmt.Println(errors.Is(err, middleware.ErrInsideTransaction))
	fmt.Println(err)
	// Output:
	// true
	// ferry: pushing ReceiptWorker (jid 0123456789abcdef01234567) while a database transaction is open: the job can run before the transaction commits, or even though it rolls back; enqueue it in the same transaction with outbox.Push(ctx, tx, …) instead, or push after commit (or mark the push deliberate with middleware.OutsideTransaction(ctx))
}

// Skip a job that has nothing left to do; with Logging installed it is counted as skipped.
func ExampleSkip() {
	logging := middleware.Logging(nil)
	job, _ := sidekiq.ParseJob([]byte(`{"class":"ReindexWorker","jid":"abc","args":[{"user_id":1}]}`))
	h := func(ctx context.Context) error {
		return middleware.Skip(ctx, "user deleted")
	}
	err := logging.InterceptRun(context.Background(), job, h)
	fmt.Println(err, logging.Skipped(), logging.Done())
	// Output: <nil> 1 0
}
