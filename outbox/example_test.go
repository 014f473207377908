package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// A job enqueued in the same transaction as the business write, then delivered by a relay
// pass. It needs the PostgreSQL the tests use (POSTGRES_URL); Redis is embedded.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("pgx", postgresURL())
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	table := "outbox_example_" + runTag // your app: outbox.DefaultTable
	if err := outbox.CreateTable(ctx, db, table); err != nil {
		log.Fatal(err)
	}
	defer outbox.DropTable(ctx, db, table) // the table and its trigger function

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	// ... the business write, in tx (INSERT INTO users ...) ...
	jid, err := outbox.Push(ctx, tx, "WelcomeEmailJob", []any{42}, outbox.Table(table))
	if err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	relay := outbox.NewRelay(db, sidekiq.NewClient(rdb, nil), &outbox.RelayConfig{Table: table})
	n, err := relay.RunOnce(ctx) // a running service uses relay.Start or relay.Run
	if err != nil {
		log.Fatal(err)
	}
	jobs, err := testutil.Enqueued(ctx, rdb, "", "default")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rows delivered:", n)
	fmt.Println(jobs[0].Class, string(jobs[0].Args), jobs[0].JID == jid)
	// Output:
	// rows delivered: 1
	// WelcomeEmailJob [42] true
}
