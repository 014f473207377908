// Package testutil helps test code that uses Ferry.
//
// For your own unit tests:
//
//   - NewEmbeddedRedis starts an in-process Redis (miniredis) that is closed when the test
//     ends, and returns a client for it.
//   - Enqueued, Scheduled, RequireEnqueued and RequireScheduled read back what your code
//     pushed and fail the test when the expected job is not there.
//   - NewFakeClock gives Client and Server configs a clock the test moves by hand.
//
// For Ferry's own suite, and for anyone testing against a real Redis or a real Ruby
// Sidekiq:
//
//   - RealRedis connects to REDIS_URL (default redis://127.0.0.1:6379), claims a database
//     number no other test process is using, empties it, and empties it again at cleanup.
//   - Ruby runs Ruby snippets with the machine's Sidekiq and ActiveJob against that
//     database, and StartSidekiq runs the real sidekiq binary.
//
// When CI=true, a test that needs a real Redis or Ruby fails if they are missing; otherwise
// it is skipped with a message saying what is missing.
package testutil
