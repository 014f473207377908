package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A PushGuard makes a push conditional on a Redis key that is checked and set by the same
// Lua call that pushes the job. The push and its guard happen together or not at all: a
// failed push leaves no guard behind, and a guard held by another job means nothing is
// pushed. Unique queue locks (package locks) and outbox delivery markers (package outbox)
// are built on it.
//
// A guard key holds the jid of the job that set it. Attach guards to a push with
// WithPushGuards, from the caller or from a push middleware. On Redis Cluster, a guarded
// push touches the guard keys and the queue in one script, so they must hash to the same
// slot.
type PushGuard struct {
	// Key is the guard's Redis key, without the Client's namespace (the Client adds it).
	Key string
	// TTL is how long the guard is kept. It must be positive. For a scheduled push the
	// caller includes the delay.
	TTL time.Duration
	// Reentrant lets a push through when the key already holds this job's jid, refreshing
	// the TTL (a job pushed again by its own jid, as a unique lock wants). When false, any
	// existing key stops the push (a delivery marker: "this jid was already pushed").
	Reentrant bool
	// Replace takes the key over from whatever job holds it and pushes anyway.
	Replace bool
}

type pushGuardsKey struct{}

// WithPushGuards returns a context that makes a push conditional on guards, in addition to
// any guards already in ctx. Pass it to Push, PushJob or PushBulk, or from a push middleware
// to its next.
func WithPushGuards(ctx context.Context, guards ...PushGuard) context.Context {
	prev := pushGuardsFrom(ctx)
	all := make([]PushGuard, 0, len(prev)+len(guards))
	all = append(append(all, prev...), guards...)
	return context.WithValue(ctx, pushGuardsKey{}, all)
}

func pushGuardsFrom(ctx context.Context) []PushGuard {
	g, _ := ctx.Value(pushGuardsKey{}).([]PushGuard)
	return g
}

func validateGuards(guards []PushGuard) error {
	for _, g := range guards {
		if g.Key == "" {
			return errors.New("sidekiq: push guard: empty key")
		}
		if g.TTL <= 0 {
			return fmt.Errorf("sidekiq: push guard %q: TTL must be positive", g.Key)
		}
	}
	return nil
}

// guardArgs builds KEYS and ARGV for guardedPushScript; score is runAt in epoch seconds.
func (c *Client) guardArgs(j *Job, payload []byte, runAt time.Time, score float64) ([]string, []any) {
	keys := make([]string, 0, 2+len(j.guards))
	args := make([]any, 0, 4+2*len(j.guards))
	at := ""
	if runAt.IsZero() {
		keys = append(keys, c.keys.Queue(j.Queue))
	} else {
		keys = append(keys, c.keys.Schedule())
		at = strconv.FormatFloat(score, 'f', -1, 64)
	}
	keys = append(keys, c.keys.Queues())
	args = append(args, payload, j.Queue, at, j.JID)
	for _, g := range j.guards {
		flags := ""
		if g.Reentrant {
			flags += "r"
		}
		if g.Replace {
			flags += "x"
		}
		keys = append(keys, c.keys.Key(g.Key))
		args = append(args, g.TTL.Milliseconds(), flags)
	}
	return keys, args
}

// guardResult reads guardedPushScript's reply: nil when pushed.
func guardResult(j *Job, reply any) error {
	r, ok := reply.([]any)
	if !ok || len(r) == 0 {
		return fmt.Errorf("sidekiq: guarded push: unexpected reply %v", reply)
	}
	if n, _ := r[0].(int64); n == 1 {
		return nil
	}
	if len(r) < 3 {
		return fmt.Errorf("sidekiq: guarded push: unexpected reply %v", reply)
	}
	i, _ := r[1].(int64)
	holder, _ := r[2].(string)
	if i < 1 || int(i) > len(j.guards) {
		return fmt.Errorf("sidekiq: guarded push: unexpected reply %v", reply)
	}
	return &PushStoppedError{Key: j.guards[i-1].Key, JID: holder}
}
