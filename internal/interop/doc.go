// Package interop holds Ferry's wire-compatibility suite against Ruby Sidekiq. It contains
// no library code: everything is in its tests and their testdata.
//
// Every test that runs Ruby runs three times, as subtests named sidekiq6, sidekiq7 and
// sidekiq8: against Debian's Sidekiq 6.4.1 (with Rails 6.1's ActiveJob adapter), and
// against Sidekiq 7.3.10 and 8.1.7 from ../shared/peers (with Sidekiq's own ActiveJob
// adapter), through testsuite.ForEachSidekiq. Where the releases differ the tests expect
// each one's own behaviour: 8.x writes integer-millisecond timestamps and names its
// ActiveJob wrapper Sidekiq::ActiveJob::Wrapper; 6.x and 7.x Web UIs check the form's CSRF token,
// 8.x's the Sec-Fetch-Site header.
//
// What the suite proves:
//
//   - Ruby → Go (ruby_to_go_test.go): payloads written by the real Ruby client (each
//     release: perform_async with every JSON-representable argument type, perform_in,
//     push_bulk, set(queue:/retry:), sidekiq_options, ActiveJob perform_later with symbol-key
//     and keyword hashes and set(wait:)) are decoded by sidekiq.ParseJob into exactly the
//     values and types Ruby reports for them, and Job.AppendJSON re-encodes them so that
//     Ruby's JSON.parse yields eql? values (Integer stays Integer, Float stays Float),
//     Sidekiq::JobRecord reads the same class, args, jid, queue and times, and ActiveJob
//     deserializes the same arguments (symbols, keyword flags, Time) from Go's copy.
//   - Go → Ruby (go_to_ruby_test.go): jobs pushed by Client.Push, PushBulk and In are run
//     by the real `sidekiq` binary, which receives every argument with the type and value Go
//     sent (float64(3) as Float 3.0, int64/uint64 beyond 2^53 as exact Integers, nil, bools,
//     nested maps and slices, unicode, "<>&"), sees float-second timestamps, and reports sane
//     latency and created_at/enqueued_at through Sidekiq::API; a scheduled job is moved by
//     Ruby's own poller and runs no earlier than it was due.
//   - Sidekiq 7.x/8.x payloads (fixtures_test.go, testdata/*.json): fixtures built from the
//     wire-format reference (millisecond timestamps, numeric-string and integer-second
//     timestamps, retry policies, retry_for, discarded_at, strict and MIME base64 backtraces,
//     both ActiveJob wrapper names, cattr object and pair forms, short jids, unknown keys)
//     decode to the right values and survive a re-encode with unknown keys byte for byte.
//   - Go Server beside Ruby (server_ruby_test.go, process_set_test.go, web_test.go,
//     api_test.go): a Sidekiq::Worker's perform_async is run by a Go handler with the exact
//     args bytes and types; a Go Server and the real `sidekiq` binary share one queue of
//     10,000 jobs pushed with push_bulk and run each exactly once between them;
//     Sidekiq::ProcessSet and Sidekiq::Workers list the Go process (identity, concurrency,
//     queues, busy, fresh beat) and its running jobs; Process#quiet! and #stop! quiet and
//     stop it, and so do the Busy page's Quiet and Stop buttons (a forged POST is refused);
//     Sidekiq::Web's dashboard, Busy, Queues and stats pages show it through Rack;
//     Sidekiq::Stats, Stats::History and Queue#latency count its jobs; its process record
//     reads like the one the release's own binary writes for the same queues
//     (process_record_test.go).
//   - Failures both ways (retry_ruby_test.go, retry_crossover_test.go, retry_options_test.go):
//     Go's retry and dead entries on the Retries and Dead pages; Retry Now and Retry All
//     from the Web UI bring Go's and Ruby's failed jobs back to the other side; each side
//     retries what the other failed, with every field intact; Go errors show readable
//     classes (error_class_test.go).
//   - Metrics: METRICS-FORMAT.md describes Sidekiq 7.3's and 8.1's execution metrics in
//     Redis; metrics_page_test.go checks a Go server's metrics through 7.3.10's and
//     8.1.7's Metrics::Query and the Metrics page.
//
// The tests need a real Redis (REDIS_URL, default 127.0.0.1:6379) and, for the Ruby parts,
// Debian's ruby with ruby-sidekiq and ruby-activejob, and the peers folder. With CI=true a
// missing service or release fails the suite instead of skipping it.
package interop
