package outbox_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/outbox"
)

// objects lists the tables and functions named after table (table, "<table>_notify").
func objects(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`
SELECT 'table ' || tablename FROM pg_tables WHERE tablename = $1
UNION ALL
SELECT 'function ' || proname FROM pg_proc WHERE proname = $1 || '_notify'`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// CreateTable makes a table and a trigger function; DropTable removes both (a plain DROP
// TABLE left the function behind: the shared test database held about 20 of them).
func TestDropTableRemovesWhatCreateTableMade(t *testing.T) {
	t.Parallel()
	db, _ := newTable(t)
	ctx := context.Background()
	table := "outbox_test_" + runTag + "_drop"
	if err := outbox.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	if got := objects(t, db, table); len(got) != 2 {
		t.Fatalf("after CreateTable: %v, want the table and its function", got)
	}
	if err := outbox.DropTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	if got := objects(t, db, table); len(got) != 0 {
		t.Fatalf("after DropTable: %v left", got)
	}
	if err := outbox.DropTable(ctx, db, table); err != nil {
		t.Fatalf("DropTable of a table already gone: %v", err)
	}
	for _, name := range []string{"", "x; DROP TABLE y", "a.b.c"} {
		if err := outbox.DropTable(ctx, db, name); err == nil || !strings.Contains(err.Error(), "invalid table name") {
			t.Errorf("DropTable(%q) = %v, want invalid table name", name, err)
		}
	}
}

// A schema-qualified outbox: the function lives in the table's schema and goes with it.
func TestDropTableSchemaQualified(t *testing.T) {
	t.Parallel()
	db, _ := newTable(t)
	ctx := context.Background()
	table := "public.outbox_test_" + runTag + "_qualified"
	if err := outbox.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	bare := strings.TrimPrefix(table, "public.")
	if got := objects(t, db, bare); len(got) != 2 {
		t.Fatalf("after CreateTable: %v, want the table and its function", got)
	}
	if err := outbox.DropTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	if got := objects(t, db, bare); len(got) != 0 {
		t.Fatalf("after DropTable: %v left", got)
	}
}
