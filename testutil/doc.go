// Package testutil helps test code that uses Ferry, without Ruby and, for most tests,
// without a real Redis:
//
//   - NewEmbeddedRedis starts an in-process Redis (miniredis) that is closed when the test
//     ends, and returns a client for it.
//   - Enqueued, Scheduled, RequireEnqueued and RequireScheduled read back what your code
//     pushed and fail the test when the expected job is not there.
//   - NewJob and Run run one handler through its middleware as a Server would (inputs
//     decoded, start hooks, panics turned into errors), with nothing written to Redis.
//   - NewFakeClock gives Client and Server configs a clock the test moves by hand;
//     Eventually waits for a condition where there is no signal to wait on.
//
// Ferry's own suite machinery (real-Redis database claims, the Ruby Sidekiq driver) is in
// internal/testsuite.
package testutil
