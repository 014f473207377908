package sidekiq

import (
	"time"
)

// SidekiqVersion names the Sidekiq generation of the fleet Ferry shares Redis with. It
// decides what Ferry writes where the generations differ:
//
//	                  payload timestamps        retry jitter
//	SidekiqAny        float seconds             rand(10)·(count+1)   (6.2.2 to 7.3)
//	Sidekiq6, 7       float seconds             rand(10)·(count+1)
//	Sidekiq8          integer milliseconds      rand(10·(count+1))   (8.0 on)
//
// The default, SidekiqAny, writes what every version reads. Choose Sidekiq8 only when every
// Ruby process and Web UI reading the data runs Sidekiq 8 or later. The process record
// carries both the 8.x "capsules" entry and the 6.x/7.x "queues" and "weights" whatever
// the version.
type SidekiqVersion uint8

const (
	// SidekiqAny writes what Sidekiq 6.x, 7.x and 8.x all read. This is the default.
	SidekiqAny SidekiqVersion = iota
	// Sidekiq6 is a fleet of Sidekiq 6.x.
	Sidekiq6
	// Sidekiq7 is a fleet of Sidekiq 7.x.
	Sidekiq7
	// Sidekiq8 is a fleet of Sidekiq 8.0 or later.
	Sidekiq8
)

// String names the version ("any", "6", "7", "8").
func (v SidekiqVersion) String() string {
	switch v {
	case Sidekiq6:
		return "6"
	case Sidekiq7:
		return "7"
	case Sidekiq8:
		return "8"
	}
	return "any"
}

// timeFormat is the payload timestamp format for v when none was chosen.
func (v SidekiqVersion) timeFormat(chosen TimeFormat) TimeFormat {
	if v == Sidekiq8 && chosen == TimeSeconds {
		return TimeMillis
	}
	return chosen
}

// retryDelay is Sidekiq's default delay for v.
func (v SidekiqVersion) retryDelay(count int, err error, job *Job) time.Duration {
	if v == Sidekiq8 {
		return DefaultRetryDelay8(count, err, job)
	}
	return DefaultRetryDelay(count, err, job)
}

// DefaultRetryDelay8 is Sidekiq 8's delay before retry count+1: count⁴ + 15 seconds plus a
// jitter of rand(10·(count+1)) seconds. Like DefaultRetryDelay it never overflows.
func DefaultRetryDelay8(count int, _ error, _ *Job) time.Duration {
	c := int64(min(max(count, 0), maxDelayCount))
	secs := c*c*c*c + 15 + randInt64n(10*(c+1))
	return time.Duration(secs) * time.Second
}
