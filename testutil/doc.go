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
//   - RubySidekiq is one release of Ruby Sidekiq: Sidekiq6 (Debian's 6.4.1), Sidekiq7
//     (7.3.10) and Sidekiq8 (8.1.7), the last two from the peers folder (../shared/peers
//     from the module root, or FERRY_PEERS) run on Debian's Ruby. Its Ruby method runs a
//     snippet with that release (and, with WithActiveJob, ActiveJob and the adapter a Rails
//     app on it uses) against a database; StartSidekiq runs its real sidekiq binary;
//     ForEachSidekiq runs a test once per release as parallel subtests. Snippets run in
//     children forked from one Ruby per release that loaded Sidekiq once, so a few hundred
//     of them cost seconds, not minutes (FERRY_RUBY_FORK=0 starts Ruby for each instead).
//     The package-level Ruby, RunRuby, StartSidekiq and RequireRuby use Sidekiq6.
//
// When CI=true, a test that needs a real Redis, Ruby or a release from the peers folder
// fails if it is missing; otherwise it is skipped with a message saying what is missing.
package testutil
