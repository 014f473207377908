package sidekiq

import (
	"strconv"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/internal/wiretime"
)

// TimeFormat chooses how Ferry writes the timestamps inside a job payload (created_at,
// enqueued_at, failed_at, retried_at). Scores of sorted sets and heartbeat times are float
// seconds whatever this says, as in every Sidekiq version.
type TimeFormat uint8

const (
	// TimeSeconds writes float epoch seconds that always carry a fractional part
	// (1795352598.824373, never 1795352598). Sidekiq 6.x, 7.x and 8.x all read it. This is
	// the default.
	TimeSeconds TimeFormat = iota
	// TimeMillis writes integer epoch milliseconds as Sidekiq 8 does. Only choose it when
	// every Ruby process and Web UI reading the data runs Sidekiq 8 or later: 6.x and 7.x
	// read milliseconds as seconds and show dates in the year 58,000.
	TimeMillis
)

// String names the format.
func (f TimeFormat) String() string {
	if f == TimeMillis {
		return "millis"
	}
	return "seconds"
}

// parseTimestamp reads a payload timestamp: float seconds, integer milliseconds (or integer
// seconds from third-party producers), or a numeric string holding either.
func parseTimestamp(raw []byte) (time.Time, bool) { return wiretime.Parse(raw) }

func floatSecondsToTime(f float64) time.Time { return wiretime.FromSeconds(f) }

// epochSeconds converts t to float epoch seconds, the unit of sorted-set scores. Whole
// seconds and the fraction are converted apart: float64(UnixNano) rounds to 256 ns first,
// which wrote 1795352600.25 as 1795352600.2499998.
func epochSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// appendTimestamp writes t in the chosen format.
func appendTimestamp(buf []byte, t time.Time, f TimeFormat) []byte {
	if f == TimeMillis {
		return strconv.AppendInt(buf, t.UnixMilli(), 10)
	}
	return jsonwire.AppendFloat(buf, epochSeconds(t))
}

// formatScore renders a sorted-set score as Sidekiq does (float seconds as a string).
func formatScore(t time.Time) string {
	return string(jsonwire.AppendFloat(nil, epochSeconds(t)))
}
