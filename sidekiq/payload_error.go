package sidekiq

import (
	"errors"
	"fmt"
)

// ErrInvalidPayload is matched (errors.Is) by every *PayloadError.
var ErrInvalidPayload = errors.New("sidekiq: invalid job payload")

// PayloadError says why bytes read from Redis are not a runnable job.
type PayloadError struct {
	// Field is the payload key at fault ("class", "args", ...), or empty when the payload is
	// not a JSON object at all.
	Field string
	// Reason says what is wrong.
	Reason string

	cause error
}

func (e *PayloadError) Error() string {
	if e.Field == "" {
		return "sidekiq: invalid job payload: " + e.Reason
	}
	return fmt.Sprintf("sidekiq: invalid job payload: %q %s", e.Field, e.Reason)
}

// Is matches ErrInvalidPayload.
func (e *PayloadError) Is(target error) bool { return target == ErrInvalidPayload }

// Unwrap returns the underlying JSON syntax error, if any.
func (e *PayloadError) Unwrap() error { return e.cause }
