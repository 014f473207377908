package locks_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

func ExampleUniqueJobs() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})

	// What sidekiq-unique-jobs wrote when Rails pushed an until_executed job: its digest is
	// "uniquejobs:" and an MD5 in hex (the only form UniqueJobs accepts, with SHA3-256).
	const digest = "uniquejobs:f98e6fdd7b0d9028fadc667da4d81fe9"
	rdb.Set(ctx, digest, "jid1", 0)
	rdb.HSet(ctx, digest+":LOCKED", "jid1", "1796000000.5")
	rdb.ZAdd(ctx, "uniquejobs:digests", redis.Z{Score: 1796000000.5, Member: digest})
	job, err := sidekiq.ParseJobString(`{"class":"ReportWorker","queue":"default","args":[42],"jid":"jid1",` +
		`"lock":"until_executed","lock_digest":"` + digest + `"}`)
	if err != nil {
		panic(err)
	}

	uj := locks.UniqueJobs(rdb)
	// A Server runs it for every job: srv.Use(uj), with sidekiq.Config{OnDeath: uj.OnDeath}.
	err = uj.InterceptRun(ctx, job, func(context.Context) error {
		fmt.Println("running", job.JID, "lock held:", rdb.Exists(ctx, digest).Val() == 1)
		return nil
	})
	fmt.Println("after:", err, "lock held:", rdb.Exists(ctx, digest).Val() == 1)
	// Output:
	// running jid1 lock held: true
	// after: <nil> lock held: false
}
