package sidekiq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestDecide covers every outcome of decide without Redis.
func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Unix(1795352598, 0)
	fail := errors.New("boom")
	fixed := func(int, error, *Job) time.Duration { return time.Minute }
	tests := []struct {
		name     string
		payload  string
		err      error
		stopping bool
		opts     *handlerOptions
		want     Outcome
		at       time.Time
		failed   bool
	}{
		{"success", `{"class":"A","args":[]}`, nil, false, nil, OutcomeSucceeded, time.Time{}, false},
		{"stop cancelled", `{"class":"A","args":[]}`, context.Canceled, true, nil, OutcomeRequeued, time.Time{}, false},
		{"cancelled otherwise fails", `{"class":"A","args":[]}`, context.Canceled, false, nil, OutcomeRetried, now.Add(time.Minute), true},
		{"retry in", `{"class":"A","args":[]}`, RetryIn(time.Hour, nil), false, nil, OutcomeRescheduled, now.Add(time.Hour), false},
		{"retry in capped", `{"class":"A","args":[]}`, RetryIn(1<<62, nil), false, nil, OutcomeRescheduled, now.Add(maxRetryDelay), false},
		{"first failure", `{"class":"A","args":[]}`, fail, false, nil, OutcomeRetried, now.Add(time.Minute), true},
		{"retry false", `{"class":"A","args":[],"retry":false}`, fail, false, nil, OutcomeDropped, now, true},
		{"retry 0", `{"class":"A","args":[],"retry":0}`, fail, false, nil, OutcomeDead, now, true},
		{"exhausted", `{"class":"A","args":[],"retry":2,"retry_count":1}`, fail, false, nil, OutcomeDead, now, true},
		{"dead false", `{"class":"A","args":[],"retry":0,"dead":false}`, fail, false, nil, OutcomeDropped, now, true},
		{"discard", `{"class":"A","args":[]}`, Discard(fail), false, nil, OutcomeDead, now, true},
		{"handler max retries", `{"class":"A","args":[],"retry_count":1}`, fail, false, &handlerOptions{maxRetries: 2}, OutcomeDead, now, true},
		{"handler delay", `{"class":"A","args":[]}`, fail, false, &handlerOptions{maxRetries: -1,
			retryDelay: func(int, error, *Job) time.Duration { return time.Second }}, OutcomeRetried, now.Add(time.Second), true},
		{"payload max beats handler", `{"class":"A","args":[],"retry":5,"retry_count":3}`, fail, false, &handlerOptions{maxRetries: 1}, OutcomeRetried, now.Add(time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, err := ParseJobString(tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			d := decide(decideInput{job: job, queue: "q", err: tt.err, stopping: tt.stopping, opts: tt.opts,
				policy: &failurePolicy{maxRetries: 3, retryDelay: fixed}, now: now})
			if d.outcome != tt.want || !d.at.Equal(tt.at) || d.failed != tt.failed {
				t.Fatalf("decide = %v at %v failed %v, want %v at %v failed %v", d.outcome, d.at, d.failed, tt.want, tt.at, tt.failed)
			}
			if (d.outcome == OutcomeRetried || d.outcome == OutcomeDead || d.outcome == OutcomeRescheduled) != (d.payload != nil) {
				t.Fatalf("payload %q for %v", d.payload, d.outcome)
			}
		})
	}
}

// NamedError is an exported error type, as a library declares one.
type NamedError struct{ msg string }

func (e *NamedError) Error() string { return e.msg }

// TestErrorClassNames: what the Retries and Dead pages show for Go errors.
func TestErrorClassNames(t *testing.T) {
	t.Parallel()
	base := errors.New("plain")
	named := &NamedError{"named"}
	var syntax error = &json.SyntaxError{}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"errors.New", base, "Ferry::Error"},
		{"fmt.Errorf without %w", fmt.Errorf("x %d", 1), "Ferry::Error"},
		{"wrapped plain", fmt.Errorf("ctx: %w", base), "Ferry::Error"},
		{"declared type", named, "sidekiq.NamedError"},
		{"wrapped declared type", fmt.Errorf("a: %w", fmt.Errorf("b: %w", named)), "sidekiq.NamedError"},
		{"stdlib type", syntax, "json.SyntaxError"},
		{"joined", errors.Join(named, base), "sidekiq.NamedError"},
		{"discard", Discard(named), "sidekiq.NamedError"},
		{"discard nil", Discard(nil), "Ferry::Error"},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), "Ferry::Timeout"},
		{"canceled", context.Canceled, "Ferry::Canceled"},
		{"panic", &PanicError{Value: 1}, "Ferry::Panic"},
		{"classer wins", fmt.Errorf("x: %w", &NoHandlerError{Class: "A"}), "Ferry::NoHandler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errorClassOf(tt.err); got != tt.want {
				t.Fatalf("errorClassOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
