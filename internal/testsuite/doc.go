// Package testsuite is the machinery of Ferry's own test suite, apart from what users of
// Ferry need (package testutil):
//
//   - RealRedis connects to REDIS_URL (default redis://127.0.0.1:6379), claims a database
//     number no other test process is using, empties it, and empties it again at cleanup;
//     Backends runs a test on the embedded Redis and on the real one.
//   - RubySidekiq is one release of Ruby Sidekiq: Sidekiq6 (Debian's 6.4.1), Sidekiq7
//     (7.3.10) and Sidekiq8 (8.1.7), the last two from the peers folder (PeersDir:
//     ../shared/peers from the module root, or FERRY_PEERS) run on Debian's Ruby. Its Ruby
//     method runs a snippet with that release (and, with WithActiveJob, ActiveJob and the
//     adapter a Rails app on it uses) against a database; StartSidekiq runs its real
//     sidekiq binary; ForEachSidekiq runs a test once per release as parallel subtests.
//     Snippets run in children forked from one Ruby per release that loaded Sidekiq once
//     (FERRY_RUBY_FORK=0 starts Ruby for each instead); StopRubyServers ends those.
//   - SyncBuffer collects a child process's output; RoundTrips counts a client's round
//     trips.
//
// When CI=true, a test that needs a real Redis, Ruby or a release from the peers folder
// fails if it is missing (Unavailable); otherwise it is skipped with a message saying what
// is missing.
package testsuite
