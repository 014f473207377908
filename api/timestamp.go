package api

import (
	"strconv"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/internal/wiretime"
)

// parseTimestamp reads a payload timestamp as every Sidekiq version may have written it
// (internal/wiretime, the core's rule).
func parseTimestamp(raw []byte) (time.Time, bool) { return wiretime.Parse(raw) }

// parseNumericTime reads a timestamp from the text of a number.
func parseNumericTime(s string) (time.Time, bool) { return wiretime.ParseNumber(s) }

// secondsToTime converts float epoch seconds (a sorted-set score, a heartbeat's beat).
func secondsToTime(f float64) time.Time { return wiretime.FromSeconds(f) }

// epochSeconds converts t to float epoch seconds, the unit of sorted-set scores. Whole
// seconds and the fraction are converted apart so no precision is lost to float64(UnixNano).
func epochSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// formatScore writes a score so that Redis parses back the same float64 (Redis keeps
// doubles; the shortest representation that round-trips is exact).
func formatScore(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// latencySince is how long ago t was, clamped at zero: a clock running behind the
// producer's must not show a negative wait. A zero t means no wait.
func latencySince(now, t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	if d := now.Sub(t); d > 0 {
		return d
	}
	return 0
}

// payloadTimes reads enqueued_at and created_at from a payload without decoding the rest,
// for latency: Sidekiq 8 measures from enqueued_at, falling back to created_at; 6.x and
// 7.x from enqueued_at alone (a job without one has no latency there). A payload that is
// not a JSON object gives zero times.
func payloadTimes(payload []byte) (enqueued, created time.Time) {
	_ = jsonwire.ScanObject(payload, func(k, v []byte) error {
		switch string(k) {
		case `"enqueued_at"`:
			enqueued, _ = parseTimestamp(v)
		case `"created_at"`:
			created, _ = parseTimestamp(v)
		}
		return nil
	})
	return enqueued, created
}

// jobLatency is Sidekiq 8's ApiUtils#calculate_latency: the time since enqueued_at, or
// created_at when the job has none; zero for a payload that has neither.
func jobLatency(now time.Time, payload []byte) time.Duration {
	enq, created := payloadTimes(payload)
	if enq.IsZero() {
		enq = created
	}
	return latencySince(now, enq)
}
