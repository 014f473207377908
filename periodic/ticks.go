package periodic

import "time"

// maxTickSteps bounds how many ticks one search walks through, so that a dense schedule
// over a long window costs milliseconds, not minutes.
const maxTickSteps = 1_000_000

// ticksBetween returns the ticks t with after < t <= upTo, oldest first. When there are
// more than max, it returns the newest max of them.
func ticksBetween(s schedule, after, upTo time.Time, max int) []time.Time {
	if max <= 0 {
		return nil
	}
	var ring []time.Time // the newest max ticks; ring[start] is the oldest once full
	start := 0
	t := after
	for steps := 0; steps < maxTickSteps; steps++ {
		t = s.next(t)
		if t.IsZero() || t.After(upTo) {
			break
		}
		if len(ring) < max {
			ring = append(ring, t)
			continue
		}
		ring[start] = t
		start = (start + 1) % max
	}
	return append(ring[start:len(ring):len(ring)], ring[:start]...)
}

// prevTick returns the newest tick at or before now, looking back at most limit, or the
// zero time when there is none. It searches windows of growing length, so the cost follows
// the gap between ticks, not limit.
func prevTick(s schedule, now time.Time, limit time.Duration) time.Time {
	for w := time.Minute; ; w *= 2 {
		if w > limit {
			w = limit
		}
		if ts := ticksBetween(s, now.Add(-w), now, 1); len(ts) == 1 {
			return ts[0]
		}
		if w >= limit {
			return time.Time{}
		}
	}
}

// tickMember is the member sidekiq-cron stores in cron_job:<name>:enqueued for a tick:
// Ruby's Time#iso8601 of the tick in UTC, second precision ("2026-12-01T21:45:50Z"). It
// is the identity of a tick that Ruby pollers and Ferry agree on.
func tickMember(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
