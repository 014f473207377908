package interop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// DeclinedError is an exported error type declared by the application: its name reaches
// Ruby as "interop.DeclinedError".
type DeclinedError struct{ Code int }

func (e *DeclinedError) Error() string { return fmt.Sprintf("declined (%d)", e.Code) }

// limitError is an unexported one: Ruby sees Ferry's stable name for it.
type limitError struct{}

func (limitError) Error() string { return "over the limit" }

// rubyErrorClasses prints error_class of every retry entry by its first argument, and the
// Retries page.
const rubyErrorClasses = rubyWeb + `
classes = Sidekiq::RetrySet.new.to_h { |e| [e.args.first, e["error_class"]] }
puts JSON.generate({"classes" => classes, "page" => ferry_get("/retries")})
`

// TestErrorClassesReadable: Go handlers fail with errors.New, fmt.Errorf("...: %w"), an
// exported error type (wrapped and not), an unexported one and an ErrorClasser. On each
// release, RetrySet and the Retries page show no Go implementation type
// (*errors.errorString, *fmt.wrapError): "Ferry::Error" for plain and unexported errors,
// "interop.DeclinedError" for the exported type however wrapped, and the ErrorClasser's
// own name.
func TestErrorClassesReadable(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testErrorClassesReadable)
}

func testErrorClassesReadable(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	failures := map[string]error{
		"plain":            errors.New("card expired"),
		"plain_wrapped":    fmt.Errorf("charging: %w", errors.New("card expired")),
		"declared":         &DeclinedError{Code: 51},
		"declared_wrapped": fmt.Errorf("charging: %w", &DeclinedError{Code: 51}),
		"unexported":       limitError{},
		"classer":          failingError{},
	}
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 2, Queues: []string{"errs"},
		RetryDelay: func(int, error, *sidekiq.Job) time.Duration { return time.Hour }})
	srv.Handle("ErrJob", sidekiq.HandlerFunc(func(_ context.Context, job *sidekiq.Job) error {
		var which string
		if err := job.DecodeArgs(&which); err != nil {
			return err
		}
		return failures[which]
	}))
	runGoServer(t, db, srv)
	c := sidekiq.NewClient(db.Client, nil)
	for which := range failures {
		if _, err := c.Push(ctx, "ErrJob", []any{which}, sidekiq.Queue("errs")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 15*time.Second, "a retry entry per failure", func() bool {
		return db.Client.ZCard(ctx, "retry").Val() == int64(len(failures))
	})
	var res struct {
		Classes map[string]string `json:"classes"`
		Page    webPage           `json:"page"`
	}
	mustUnmarshalPlain(t, lastLine(sk.Ruby(t, db.URL, rubyErrorClasses)), &res)
	for which, class := range res.Classes {
		if class == "" || strings.ContainsAny(class, "*") || strings.Contains(class, "errorString") || strings.Contains(class, "wrapError") {
			t.Errorf("%s: error_class %q names a Go implementation type", which, class)
		}
		if !strings.Contains(res.Page.Body, class) {
			t.Errorf("%s: the Retries page does not show %q", which, class)
		}
	}
	for which, want := range map[string]string{
		"plain": "Ferry::Error", "plain_wrapped": "Ferry::Error", "unexported": "Ferry::Error",
		"declared": "interop.DeclinedError", "declared_wrapped": "interop.DeclinedError",
		"classer": (failingError{}).ErrorClass(),
	} {
		if got := res.Classes[which]; got != want {
			t.Errorf("%s: error_class %q, want %q", which, got, want)
		}
	}
}
