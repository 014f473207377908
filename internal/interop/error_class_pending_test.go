//go:build interop_pending

// Pending on issue 16, item 4: error classes a Rails developer can read on the Retries and
// Dead pages. Run with -tags interop_pending.

package interop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// declinedError is an error type declared by the application; its name should reach Ruby.
type declinedError struct{ code int }

func (e *declinedError) Error() string { return fmt.Sprintf("declined (%d)", e.code) }

// rubyErrorClasses prints error_class of every retry entry by its first argument, and the
// Retries page.
const rubyErrorClasses = rubyWeb + `
classes = Sidekiq::RetrySet.new.to_h { |e| [e.args.first, e["error_class"]] }
puts JSON.generate({"classes" => classes, "page" => ferry_get("/retries")})
`

// TestErrorClassesReadable: Go handlers fail with errors.New, fmt.Errorf("...: %w"), a
// declared error type (wrapped and not) and an ErrorClasser. On each release, RetrySet and
// the Retries page show for the plain errors one stable name that is not a Go
// implementation type (*errors.errorString, *fmt.wrapError), for the declared type its own
// name, and for the ErrorClasser the name it chose.
func TestErrorClassesReadable(t *testing.T) {
	t.Parallel()
	testutil.ForEachSidekiq(t, testErrorClassesReadable)
}

func testErrorClassesReadable(t *testing.T, sk *testutil.RubySidekiq) {
	db := testutil.RealRedis(t)
	ctx := context.Background()
	failures := map[string]error{
		"plain":            errors.New("card expired"),
		"plain_wrapped":    fmt.Errorf("charging: %w", errors.New("card expired")),
		"declared":         &declinedError{code: 51},
		"declared_wrapped": fmt.Errorf("charging: %w", &declinedError{code: 51}),
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
	if p, w := res.Classes["plain"], res.Classes["plain_wrapped"]; p != w {
		t.Errorf("plain errors named %q and %q; want one stable name", p, w)
	}
	for _, which := range []string{"declared", "declared_wrapped"} {
		if !strings.Contains(res.Classes[which], "declinedError") {
			t.Errorf("%s: error_class %q, want the declared type's name (declinedError)", which, res.Classes[which])
		}
	}
	if got := res.Classes["classer"]; got != (failingError{}).ErrorClass() {
		t.Errorf("ErrorClasser: error_class %q, want %q", got, (failingError{}).ErrorClass())
	}
}
