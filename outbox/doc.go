// Package outbox enqueues Sidekiq jobs in the same PostgreSQL transaction as the business
// write that calls for them (the transactional outbox pattern): a rolled-back transaction
// never emits its jobs, a committed one always does, even if the process dies right after
// the commit or Redis is down at the time.
//
// # 1. The table
//
// CreateTable creates the outbox table (DefaultTable, "ferry_outbox", unless you name
// another) if it does not exist; Schema is its definition, for your migrations. A row holds
// the complete Sidekiq payload of one job, its jid, an optional run_at, and the relay's
// bookkeeping: attempts, last_error, delivered_at, parked_at.
//
// # 2. Push in your transaction
//
//	tx, err := db.BeginTx(ctx, nil)
//	// ... INSERT INTO users ... in tx ...
//	jid, err := outbox.Push(ctx, tx, "WelcomeEmailJob", []any{userID}, outbox.Queue("mailers"))
//	err = tx.Commit()
//
// Push writes the payload (new jid, queue, retry, created_at) as one INSERT in tx. Nothing
// reaches Redis yet: the row becomes visible to the relay only when tx commits, and
// vanishes with a rollback. In, At schedule the job; the relay then puts it in Sidekiq's
// schedule set. Ruby workers, Ferry servers and the Web UI cannot tell a delivered job
// from one pushed by Sidekiq::Client.
//
// To catch the mistake this package fixes, install middleware.TxGuard on your Client and
// mark contexts that carry a transaction with middleware.WithTx: a Client.Push inside a
// transaction then fails with an error that points at outbox.Push.
//
// # 3. The relay
//
//	relay := outbox.NewRelay(db, sidekiq.NewClient(rdb, nil), nil)
//	err := relay.Start(ctx) // ... relay.Stop(ctx) at shutdown; or relay.Run(ctx)
//
// Each pass (RunOnce) opens a transaction, claims up to RelayConfig.Batch undelivered rows
// in id order with FOR UPDATE SKIP LOCKED, pushes them all in one pipelined Redis round
// trip (sidekiq.Client.PushJobs: one Lua call per job), records each row's outcome and
// commits. The row locks are held for that one round trip and a few statements: long
// enough that no other relay can claim the batch before it is marked, short because the
// batch is pushed at once rather than row by row. A full batch is followed at once by the
// next. Between batches the relay waits for a notification: CreateTable installs a trigger
// that calls pg_notify at every committed insert, and a relay on the pgx driver LISTENs on
// one connection of its own, so a committed row usually reaches Redis within milliseconds.
// Polling every RelayConfig.Interval (default 200 ms) is the fallback that bounds the wait
// when a notification is missed (a lost connection, another driver, DisableListen). Run as
// many relays as you like over one table: SKIP LOCKED gives each its own rows.
//
// # 4. Guarantees
//
// Delivery into Redis is at least once, and de-duplicated by jid, which makes it exactly
// once per jid: every push carries a delivery marker (the Redis key MarkerPrefix+jid, a
// sidekiq.PushGuard) that the same Lua call sets after pushing the job. A row's jid is
// content another program may have written, and no such value may choose a key outside
// its keyspace or make a key of any size: a jid that is not 1 to 64 letters, digits, '-'
// and '_' (Push's are 24 hex digits) is hashed, its marker being MarkerPrefix+"h:"+ its
// hex SHA-256 (DeliveryGuard). Nothing else from a row or a payload becomes a key: the job
// goes to the queue its payload names, as any Sidekiq push does. A relay that dies
// after pushing and before committing leaves the row unmarked but the marker set; the next
// pass finds the marker, pushes nothing and marks the row delivered. Markers are kept for
// MarkerTTL (7 days): a row left unmarked longer than that could be pushed again. Handlers
// still see a job at least once, as with any Sidekiq job (a worker can crash mid-job).
//
// A push stopped by the relay Client's own push middleware (a unique lock collapsing the
// job into one already queued, a filter) is marked delivered, with the reason in
// last_error, because a direct Client.Push would have pushed nothing either. The relay's
// middleware runs before the batch is written and does not see each write's outcome, so a
// held unique lock counts as such a stop whatever the lock's conflict policy.
//
// When Redis itself crashes, exactly once holds only if Redis keeps the job and its marker
// together: both are written by one Lua call, which Redis logs to its append-only file as
// one MULTI ... EXEC block. Run it with appendonly yes and appendfsync always (so a reply
// means the write is on disk) and aof-load-truncated no, and when it then refuses to start
// on a file cut by the crash, run redis-check-aof --fix before starting it again.
// Redis 7.0's own repair (aof-load-truncated yes, the default) cuts a torn block after its
// last whole command rather than before its MULTI: the block's head stays in the file, the
// next write joins that open block, and the restart after that replays both, so a job can
// come back without its marker and be delivered twice (Valkey fixed its loader in
// valkey-io/valkey#4342). The outage tests run
// Redis the safe way (internal/redisproc) and kill it ten times during 5,000 deliveries.
//
// # 5. Redis outages and parked rows
//
// When Redis does not answer, or answers that it cannot take writes now (loading its data
// after a restart, busy, read-only after a failover, out of memory), rows wait: no attempt
// is counted, RunOnce returns an error matching ErrRedisUnavailable, and the relay tries
// again every Interval; an outage of any length parks nothing and loses nothing. A row
// that Redis refuses (another error reply, such as WRONGTYPE on its queue key) or that
// push middleware fails gets attempts+1 and last_error; after RelayConfig.MaxAttempts
// (default 10) it is parked: parked_at is set and the relay leaves it alone. A row whose
// payload cannot be read is parked at once. Parked rows stay in the table; inspect and
// requeue them with SQL:
//
//	SELECT id, jid, attempts, last_error, parked_at FROM ferry_outbox WHERE parked_at IS NOT NULL;
//	UPDATE ferry_outbox SET parked_at = NULL, attempts = 0 WHERE id = $1; -- after fixing the cause
//
// Delivered rows stay too (delivered_at set), for audit; delete old ones when you like:
//
//	DELETE FROM ferry_outbox WHERE delivered_at < now() - interval '7 days';
//
// # 6. Removing an outbox
//
// CreateTable makes two objects: the table and its trigger function "<table>_notify()",
// which DROP TABLE leaves behind. DropTable removes both, in one transaction:
//
//	err := outbox.DropTable(ctx, db, "ferry_outbox")
//
// The package uses database/sql; use the pgx driver (github.com/jackc/pgx/v5/stdlib,
// driver name "pgx"), as the tests and examples/outbox do.
package outbox
