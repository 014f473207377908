// Package activejob reads and writes the values of Rails' ActiveJob arguments: the JSON a
// Rails app's perform_later stores in a Sidekiq job's "arguments", with the "_aj_…"
// markers ActiveJob (Rails 6.1 and later) puts on values JSON cannot tell apart.
//
// DecodeArguments turns an "arguments" array into Go values: JSON numbers into int64 or
// float64, a Hash into map[string]any (or SymbolHash, whose keys are Ruby Symbols), and
// the serialized Ruby values into this package's types (Symbol, GlobalID, Date, Duration,
// Range, Module, Decimal, time.Time; Serialized for an application's own serializer).
// EncodeArguments does the reverse, so a value survives a trip through Go and a Ruby job
// receives the types it expects. Keywords as the last argument become keyword arguments.
//
// Running and pushing ActiveJob jobs is package middleware's (middleware.ActiveJob,
// middleware.PushActiveJob); this package is only the value codec.
package activejob
