// Package outbox enqueues Sidekiq jobs in the same PostgreSQL transaction as the business
// write that calls for them (the transactional outbox pattern).
//
// Push inserts the complete Sidekiq payload, jid assigned, into an outbox table inside the
// caller's *sql.Tx: if the transaction rolls back, the job never existed; if it commits, a
// Relay delivers it to Redis through a sidekiq.Client. Each delivery carries a delivery
// marker (a sidekiq.PushGuard set by the same Lua call as the push), so a relay that dies
// after pushing and before marking the row does not push the job a second time. Several
// relays may run over one table: rows are claimed with FOR UPDATE SKIP LOCKED.
//
// The package uses database/sql; the tests use the pgx driver ("pgx").
package outbox
