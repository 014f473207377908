package sidekiq

import (
	"errors"
	"fmt"
	"time"
)

// ErrDiscard is matched (errors.Is) by errors made with Discard.
var ErrDiscard = errors.New("sidekiq: job discarded")

// DiscardError sends a job to the dead set at once, without retries (or drops it when its
// payload says "retry": false or "dead": false). Make it with Discard.
type DiscardError struct{ Err error }

// Discard marks err as final: the job is not retried. Return it from a handler.
func Discard(err error) error { return &DiscardError{Err: err} }

func (e *DiscardError) Error() string {
	if e.Err == nil {
		return "sidekiq: job discarded"
	}
	return "sidekiq: job discarded: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DiscardError) Unwrap() error { return e.Err }

// Is matches ErrDiscard.
func (e *DiscardError) Is(target error) bool { return target == ErrDiscard }

// ErrRetryIn is matched (errors.Is) by errors made with RetryIn.
var ErrRetryIn = errors.New("sidekiq: job rescheduled")

// RetryInError reschedules a job without counting a failure. Make it with RetryIn.
type RetryInError struct {
	Delay time.Duration
	Err   error
}

// RetryIn reschedules the job to run again after d, without using up a retry and without
// recording an error on the job: for "not now" conditions such as a held worker lock or a
// rate limit. err says why, for the logs, and may be nil.
func RetryIn(d time.Duration, err error) error { return &RetryInError{Delay: d, Err: err} }

func (e *RetryInError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("sidekiq: job rescheduled in %v", e.Delay)
	}
	return fmt.Sprintf("sidekiq: job rescheduled in %v: %v", e.Delay, e.Err)
}

// Unwrap returns the cause.
func (e *RetryInError) Unwrap() error { return e.Err }

// Is matches ErrRetryIn.
func (e *RetryInError) Is(target error) bool { return target == ErrRetryIn }

// PanicError is the failure recorded when a handler panics. The process does not crash.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// ErrorClass names the error in the retry set, as a Ruby exception class would be.
func (e *PanicError) ErrorClass() string { return "Ferry::Panic" }

// ErrorClasser is implemented by errors that choose the name shown as error_class in the
// retry and dead sets. Without it the error's Go type is used.
type ErrorClasser interface {
	ErrorClass() string
}

// ErrNoHandler is matched by the error of a job whose class no handler is registered for.
var ErrNoHandler = errors.New("sidekiq: no handler")

// NoHandlerError fails a job whose class has no handler in this process. It takes the
// normal failure path, so the job is retried (perhaps by a process that has the handler).
type NoHandlerError struct {
	Class    string
	Identity string
}

func (e *NoHandlerError) Error() string {
	return fmt.Sprintf("sidekiq: no handler for class %q in Ferry process %s; register one with Server.Handle or keep this class's queue out of this process's Queues", e.Class, e.Identity)
}

// Is matches ErrNoHandler.
func (e *NoHandlerError) Is(target error) bool { return target == ErrNoHandler }

// ErrorClass is the name shown in the retry set.
func (e *NoHandlerError) ErrorClass() string { return "Ferry::NoHandler" }
