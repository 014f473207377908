package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// Namespace is the key prefix the assertions read under ("" for none). Pass the same value
// as ClientConfig.Namespace.
type Namespace string

func (n Namespace) key(k string) string {
	if n == "" {
		return k
	}
	return string(n) + ":" + k
}

// Enqueued returns the jobs waiting in a queue, oldest (next to run) first.
func Enqueued(ctx context.Context, rdb redis.UniversalClient, ns Namespace, queue string) ([]*sidekiq.Job, error) {
	raws, err := rdb.LRange(ctx, ns.key("queue:"+queue), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	jobs := make([]*sidekiq.Job, 0, len(raws))
	for i := len(raws) - 1; i >= 0; i-- { // LPUSH + RPOP: the tail runs first
		j, err := sidekiq.ParseJobString(raws[i])
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", queue, err)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// ScheduledJob is a job in the schedule, retry or dead set with its score as a time.
type ScheduledJob struct {
	*sidekiq.Job
	// At is the member's score: when it runs (schedule, retry) or when it died (dead).
	At time.Time
}

// Scheduled returns the members of a sorted set ("schedule", "retry" or "dead"), earliest
// first.
func Scheduled(ctx context.Context, rdb redis.UniversalClient, ns Namespace, set string) ([]ScheduledJob, error) {
	zs, err := rdb.ZRangeWithScores(ctx, ns.key(set), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]ScheduledJob, 0, len(zs))
	for _, z := range zs {
		j, err := sidekiq.ParseJobString(z.Member.(string))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", set, err)
		}
		sec := int64(z.Score)
		out = append(out, ScheduledJob{Job: j, At: time.Unix(sec, int64((z.Score-float64(sec))*1e9))})
	}
	return out, nil
}

// RequireEnqueued fails the test unless a job of class with exactly these args (compared
// as JSON values, so 1 and 1.0 differ as they do in Ruby) waits in queue. It returns the
// first match.
func RequireEnqueued(tb testing.TB, rdb redis.UniversalClient, ns Namespace, queue, class string, args []any) *sidekiq.Job {
	tb.Helper()
	jobs, err := Enqueued(context.Background(), rdb, ns, queue)
	if err != nil {
		tb.Fatalf("RequireEnqueued: %v", err)
	}
	if j := findJob(tb, jobs, class, args); j != nil {
		return j
	}
	tb.Fatalf("RequireEnqueued: no %s job with args %s in queue %q; it holds:\n%s", class, mustArgs(tb, args), queue, describe(jobs))
	return nil
}

// RequireScheduled fails the test unless a job of class with these args is in the schedule
// set, due within tolerance of at (pass a zero at to accept any time). It returns the match.
func RequireScheduled(tb testing.TB, rdb redis.UniversalClient, ns Namespace, class string, args []any, at time.Time, tolerance time.Duration) ScheduledJob {
	tb.Helper()
	sjobs, err := Scheduled(context.Background(), rdb, ns, "schedule")
	if err != nil {
		tb.Fatalf("RequireScheduled: %v", err)
	}
	jobs := make([]*sidekiq.Job, len(sjobs))
	for i := range sjobs {
		jobs[i] = sjobs[i].Job
	}
	for i, j := range jobs {
		if findJob(tb, []*sidekiq.Job{j}, class, args) == nil {
			continue
		}
		if !at.IsZero() {
			if d := sjobs[i].At.Sub(at); d > tolerance || d < -tolerance {
				continue
			}
		}
		return sjobs[i]
	}
	tb.Fatalf("RequireScheduled: no %s job with args %s due at %v (±%v); the schedule holds:\n%s", class, mustArgs(tb, args), at, tolerance, describe(jobs))
	return ScheduledJob{}
}

func mustArgs(tb testing.TB, args []any) []byte {
	tb.Helper()
	raw, err := sidekiq.EncodeArgs(args)
	if err != nil {
		tb.Fatalf("encoding expected args: %v", err)
	}
	return raw
}

func findJob(tb testing.TB, jobs []*sidekiq.Job, class string, args []any) *sidekiq.Job {
	tb.Helper()
	want := canonicalJSON(tb, mustArgs(tb, args))
	for _, j := range jobs {
		if j.HandlerName() != class && j.Class != class {
			continue
		}
		if bytes.Equal(canonicalJSON(tb, j.Args), want) {
			return j
		}
	}
	return nil
}

// canonicalJSON re-encodes a JSON value with sorted keys and no space, keeping number
// literals exactly as written.
func canonicalJSON(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	if !jsonwire.Valid(raw) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

func describe(jobs []*sidekiq.Job) string {
	if len(jobs) == 0 {
		return "  (nothing)"
	}
	var b bytes.Buffer
	for i, j := range jobs {
		if i == 20 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(jobs)-20)
			break
		}
		fmt.Fprintf(&b, "  %s %s %s\n", j.JID, j.HandlerName(), j.Args)
	}
	return b.String()
}
