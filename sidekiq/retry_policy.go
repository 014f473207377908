package sidekiq

import (
	"encoding/json"
	"strconv"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// DefaultMaxRetries is Sidekiq's default number of retries for a job whose "retry" is true
// or absent.
const DefaultMaxRetries = 25

// RetryPolicy is a job's "retry" field, which Sidekiq writes as a bool or an integer:
//
//   - absent: the handler's default (25 retries unless configured otherwise);
//   - true: the default number of retries;
//   - false: no retry, and the job is dropped (not buried) when it fails;
//   - an integer N: N retries, then the dead set; 0 sends a failed job straight to the dead
//     set, because 0 is truthy in Ruby.
//
// Any other JSON value is read as "default", as Sidekiq does, and written back unchanged.
// The zero RetryPolicy is "absent".
type RetryPolicy struct {
	kind  retryKind
	n     int
	other json.RawMessage
}

type retryKind uint8

const (
	retryAbsent retryKind = iota
	retryTrue
	retryFalse
	retryCount
	retryOther
)

// RetryTrue returns retry: true, the default number of retries.
func RetryTrue() RetryPolicy { return RetryPolicy{kind: retryTrue} }

// RetryFalse returns retry: false.
func RetryFalse() RetryPolicy { return RetryPolicy{kind: retryFalse} }

// RetryN returns retry: n. Negative n is treated as 0.
func RetryN(n int) RetryPolicy {
	if n < 0 {
		n = 0
	}
	return RetryPolicy{kind: retryCount, n: n}
}

// IsSet reports whether the payload carries a "retry" key.
func (r RetryPolicy) IsSet() bool { return r.kind != retryAbsent }

// Enabled reports whether a failed job may be retried or buried: false only for
// "retry": false.
func (r RetryPolicy) Enabled() bool { return r.kind != retryFalse }

// Max returns how many retries the job allows, given the handler's default.
// "retry": false allows 0 and Enabled reports false.
func (r RetryPolicy) Max(defaultMax int) int {
	switch r.kind {
	case retryFalse:
		return 0
	case retryCount:
		return r.n
	}
	return defaultMax
}

// Count returns the integer of "retry": N, and whether the field is an integer.
func (r RetryPolicy) Count() (int, bool) { return r.n, r.kind == retryCount }

// String renders the field as it appears in JSON ("absent" when missing).
func (r RetryPolicy) String() string {
	switch r.kind {
	case retryTrue:
		return "true"
	case retryFalse:
		return "false"
	case retryCount:
		return strconv.Itoa(r.n)
	case retryOther:
		return string(r.other)
	}
	return "absent"
}

func parseRetry(raw []byte) RetryPolicy {
	switch jsonwire.KindOf(raw) {
	case jsonwire.Bool:
		if raw[0] == 't' {
			return RetryPolicy{kind: retryTrue}
		}
		return RetryPolicy{kind: retryFalse}
	case jsonwire.Number:
		// Only an integer literal is a count: Sidekiq checks msg_retry.is_a?(Integer), so
		// 5.0 means the default and must be written back as 5.0 (it goes to other).
		if n, err := strconv.ParseInt(string(raw), 10, 0); err == nil {
			return RetryPolicy{kind: retryCount, n: int(n)}
		}
	}
	return RetryPolicy{kind: retryOther, other: append(json.RawMessage(nil), raw...)}
}

// parseIntegral reads a JSON number that is a whole number fitting an int.
func parseIntegral(raw []byte) (int, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 0)
	if err == nil {
		return int(n), true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
		return 0, false
	}
	return int(f), true
}

func (r RetryPolicy) appendJSON(buf []byte) []byte {
	switch r.kind {
	case retryTrue:
		return append(buf, "true"...)
	case retryFalse:
		return append(buf, "false"...)
	case retryCount:
		return strconv.AppendInt(buf, int64(r.n), 10)
	case retryOther:
		return append(buf, r.other...)
	}
	return buf
}
