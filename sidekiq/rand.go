package sidekiq

import "math/rand/v2"

// randInt64n returns a pseudo-random number in [0, n) for jitter; n ≤ 0 gives 0.
func randInt64n(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}
