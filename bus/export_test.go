package bus

import "context"

// SetAfterFanOut installs a hook that runs after the driver pushed an event's subscriber
// jobs and before the event's job is acknowledged (for the crash test).
func SetAfterFanOut(b *Bus, fn func(ctx context.Context, busID string)) { b.afterFanOut = fn }

// MatchesForTest reports whether the event (a JSON object) matches filters, as a Go driver
// decides it.
func MatchesForTest(filters map[string]string, event []byte) (bool, error) {
	a, err := parseAttrs(event)
	if err != nil {
		return false, err
	}
	return compileMatch(filters).matches(a), nil
}

// RunHeartbeat runs the heartbeat once, as a QueueBus::Heartbeat job does.
func RunHeartbeat(ctx context.Context, b *Bus) (int, error) { return b.heartbeat(ctx) }

// RubyToSForTest is Ruby's value.to_s for a JSON value, as the matcher computes it.
func RubyToSForTest(raw []byte) string { return rubyToS(raw) }
