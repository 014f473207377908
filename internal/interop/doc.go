// Package interop holds Ferry's wire-compatibility suite against Ruby Sidekiq. It contains
// no library code: everything is in its tests and their testdata.
//
// What the suite proves:
//
//   - Ruby → Go (ruby_to_go_test.go): payloads written by the real Ruby client (Debian's
//     Sidekiq 6.4.1: perform_async with every JSON-representable argument type, perform_in,
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
//   - Go Server beside Ruby (server_ruby_test.go, process_set_test.go, web_test.go): a
//     Sidekiq::Worker's perform_async is run by a Go handler with the exact args bytes and
//     types; a Go Server and the real `sidekiq` binary share one queue of 10,000 jobs
//     pushed with push_bulk and run each exactly once between them; Sidekiq::ProcessSet and
//     Sidekiq::Workers list the Go process (identity, concurrency, queues, busy, fresh beat)
//     and its running jobs; Process#quiet! and #stop! quiet and stop it; Sidekiq::Web's
//     dashboard, Busy, Queues and stats pages render it (status 200) through Rack.
//
// The tests need a real Redis (REDIS_URL, default 127.0.0.1:6379) and, for the Ruby parts,
// ruby with the sidekiq and activejob gems. With CI=true a missing service fails the suite
// instead of skipping it.
package interop
