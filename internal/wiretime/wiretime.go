// Package wiretime reads the timestamps of Sidekiq payloads and sorted-set scores, as every
// Sidekiq version may have written them: float seconds (6.x, 7.x), integer milliseconds
// (8.x), integer seconds (third-party producers), or a numeric string holding any of them.
// The core (package sidekiq) and package api read them the same way through it.
package wiretime

import (
	"math"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// msThreshold separates integer seconds from integer milliseconds. Sidekiq 8 decides by
// JSON type alone (a float is seconds, an integer milliseconds); third-party producers write
// integer seconds, which no millisecond timestamp after 1973 can be confused with.
const msThreshold = 1e11

// Parse reads a payload timestamp (a JSON number or string); ok is false for anything else
// or a value out of range.
func Parse(raw []byte) (t time.Time, ok bool) {
	switch jsonwire.KindOf(raw) {
	case jsonwire.Number:
		return ParseNumber(string(raw))
	case jsonwire.String:
		s, err := jsonwire.Unquote(raw)
		if err != nil {
			return time.Time{}, false
		}
		return ParseNumber(s)
	}
	return time.Time{}, false
}

// ParseNumber reads a timestamp from the text of a number: with a fraction or exponent it
// is seconds; an integer is seconds below 10¹¹ and milliseconds from there.
func ParseNumber(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	isFloat := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			isFloat = true
			break
		}
	}
	if !isFloat {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		if n < msThreshold && n > -msThreshold {
			return time.Unix(n, 0), true
		}
		return time.UnixMilli(n), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return time.Time{}, false
	}
	return FromSeconds(f), true
}

// FromSeconds converts float epoch seconds (a sorted-set score, a heartbeat's beat); NaN,
// infinities and values beyond 10¹⁵ give the zero time.
func FromSeconds(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9)))
}
