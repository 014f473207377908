package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds, and fails the test (naming
// what it waited for) if it still does not after timeout. Use it where no signal can be
// waited on: state in Redis, another process, a file.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
