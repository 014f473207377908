package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
)

// DefaultTable is the outbox table used when no Table option or RelayConfig.Table is given.
const DefaultTable = "ferry_outbox"

// Schema is the outbox table's definition; %[1]s stands for the table name. Columns:
//
//   - id: delivery order (rows are relayed by ascending id).
//   - jid: the job's jid, unique.
//   - payload: the complete Sidekiq JSON of the job, as sidekiq.Job.AppendJSON writes it.
//   - run_at: when set, the job goes to the schedule set for that time.
//   - created_at: when the row was inserted (the transaction's start).
//   - attempts, last_error: failed delivery attempts so far and the latest error. On a
//     delivered row last_error may say why nothing was pushed ("not pushed: ...", when
//     the relay Client's push middleware stopped the push).
//   - delivered_at: when the relay pushed the job to Redis.
//   - parked_at: when the relay gave up on the row (after MaxAttempts, or an unreadable
//     payload); parked rows stay in the table with their error and are never retried.
//
// The partial index serves the relay's claim query. CreateTable also installs
// NotifySchema, so relays hear of committed rows at once.
const Schema = `CREATE TABLE IF NOT EXISTS %[1]s (
	id           bigserial PRIMARY KEY,
	jid          text NOT NULL UNIQUE,
	payload      text NOT NULL,
	run_at       timestamptz NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	attempts     integer NOT NULL DEFAULT 0,
	last_error   text NULL,
	delivered_at timestamptz NULL,
	parked_at    timestamptz NULL
);
CREATE INDEX IF NOT EXISTS %[2]s ON %[1]s (id) WHERE delivered_at IS NULL AND parked_at IS NULL`

// NotifySchema installs, for the outbox table %[1]s, a statement-level trigger that calls
// pg_notify on channel %[2]s after every INSERT. PostgreSQL delivers the notification
// when the inserting transaction commits (never on rollback), and a relay listening on the
// channel (see RelayConfig.Listen) then runs a pass at once instead of at its next poll.
// %[3]s is the trigger function's name.
const NotifySchema = `CREATE OR REPLACE FUNCTION %[3]s() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM pg_notify('%[2]s', '');
	RETURN NULL;
END
$fn$;
DO $do$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'ferry_outbox_notify' AND tgrelid = '%[1]s'::regclass) THEN
		CREATE TRIGGER ferry_outbox_notify AFTER INSERT ON %[1]s FOR EACH STATEMENT EXECUTE FUNCTION %[3]s();
	END IF;
END
$do$`

// NotifyChannel returns the LISTEN/NOTIFY channel of an outbox table: its name with the
// schema's dot replaced by an underscore, cut to PostgreSQL's 63-byte limit.
func NotifyChannel(table string) string {
	c := strings.ReplaceAll(table, ".", "_")
	if len(c) > 63 {
		c = c[:63]
	}
	return c
}

// tableName accepts an identifier, optionally schema-qualified: letters, digits and
// underscores, not starting with a digit. Table names are spliced into SQL, so nothing else
// is allowed.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func checkTable(table string) error {
	if !tableName.MatchString(table) {
		return fmt.Errorf("outbox: invalid table name %q", table)
	}
	return nil
}

// CreateTable creates the outbox table (with its index and notify trigger) named table if
// it does not exist, and adds the trigger to an existing table that lacks it.
// table may be schema-qualified ("app.outbox"). Besides the table it creates the trigger
// function "<table>_notify()", which DROP TABLE leaves behind: remove both with DropTable.
func CreateTable(ctx context.Context, db *sql.DB, table string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	index := strings.ReplaceAll(table, ".", "_") + "_pending"
	if i := strings.IndexByte(table, '.'); i >= 0 {
		index = table[i+1:] + "_pending"
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(Schema, table, index)); err != nil {
		return fmt.Errorf("outbox: create table %s: %w", table, err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(NotifySchema, table, NotifyChannel(table), notifyFunction(table))); err != nil {
		return fmt.Errorf("outbox: create notify trigger on %s: %w", table, err)
	}
	return nil
}

// DropTable removes what CreateTable made for table: the table (with its rows, index and
// trigger) and its trigger function "<table>_notify()", in one transaction. A table or
// function already gone is not an error. Use it in migrations that retire an outbox, and
// in tests that create their own tables.
func DropTable(ctx context.Context, db *sql.DB, table string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: drop table %s: %w", table, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, stmt := range []string{"DROP TABLE IF EXISTS " + table, "DROP FUNCTION IF EXISTS " + notifyFunction(table) + "()"} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("outbox: drop table %s: %w", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: drop table %s: %w", table, err)
	}
	return nil
}

// notifyFunction is the name of the trigger function CreateTable installs for table.
func notifyFunction(table string) string { return table + "_notify" }
