package testsuite

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redact"
	"github.com/ferryhq/ferry/testutil"
)

// InCI reports whether the tests run in CI (CI=true), where missing services are failures.
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Unavailable fails the test in CI and skips it elsewhere, with the reason.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatalf("required service unavailable in CI: %s", msg)
	}
	tb.Skipf("skipped: %s (set CI=true to make this a failure)", msg)
}

// RealRedisURL is REDIS_URL, or redis://127.0.0.1:6379 when unset.
func RealRedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

// RealRedisDB is one isolated database on a real Redis server.
type RealRedisDB struct {
	// Client talks to the claimed database.
	Client *redis.Client
	// DB is the database number.
	DB int
	// URL is a redis:// URL selecting the database, for Ruby and child processes.
	URL string
	// Addr is host:port of the server.
	Addr string

	owner string         // the claim's value in database 0
	admin *redis.Options // database 0 of the same server
}

const (
	claimKeyPrefix = "ferry-test:claim:"
	claimTTL       = 15 * time.Minute
	firstTestDB    = 1
	lastTestDB     = 15
)

// RealRedis claims a database (1 to 15) on the real Redis at RealRedisURL that no other
// test is using, empties it, and returns a client for it. The claim is a key in database 0
// with a TTL, so a crashed test run frees it by itself. At cleanup the database is emptied
// and the claim released. When every database is taken it waits for one.
func RealRedis(tb testing.TB) *RealRedisDB {
	tb.Helper()
	opts, err := redis.ParseURL(RealRedisURL())
	if err != nil {
		tb.Fatalf("REDIS_URL: %v", redact.Error(err, RealRedisURL()))
	}
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: opts.Addr, Password: opts.Password, DB: 0})
	defer admin.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = admin.Ping(pctx).Err()
	cancel()
	if err != nil {
		Unavailable(tb, "no Redis at %s: %v", opts.Addr, err)
		return nil
	}
	owner := fmt.Sprintf("%d:%s:%d", os.Getpid(), tb.Name(), time.Now().UnixNano())
	deadline := time.Now().Add(5 * time.Minute)
	db := -1
	for db < 0 {
		for n := firstTestDB; n <= lastTestDB; n++ {
			ok, err := admin.SetNX(ctx, claimKeyPrefix+strconv.Itoa(n), owner, claimTTL).Result()
			if err != nil {
				tb.Fatalf("claiming a Redis database: %v", err)
			}
			if ok {
				db = n
				break
			}
		}
		if db < 0 {
			if time.Now().After(deadline) {
				tb.Fatalf("no free Redis test database (1-%d) after 5 minutes", lastTestDB)
			}
			time.Sleep(50 * time.Millisecond) // another test process holds every database
		}
	}
	o := *opts
	o.DB = db
	rdb := redis.NewClient(&o)
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		tb.Fatalf("flushing test database %d: %v", db, err)
	}
	tb.Cleanup(func() {
		_ = rdb.FlushDB(context.Background()).Err()
		_ = rdb.Close()
		a := redis.NewClient(&redis.Options{Addr: opts.Addr, Password: opts.Password, DB: 0})
		defer a.Close()
		// Release only our own claim.
		if v, _ := a.Get(context.Background(), claimKeyPrefix+strconv.Itoa(db)).Result(); v == owner {
			a.Del(context.Background(), claimKeyPrefix+strconv.Itoa(db))
		}
	})
	url := fmt.Sprintf("redis://%s/%d", opts.Addr, db)
	if opts.Password != "" {
		url = fmt.Sprintf("redis://:%s@%s/%d", opts.Password, opts.Addr, db)
	}
	admin0 := *opts
	admin0.DB = 0
	return &RealRedisDB{Client: rdb, DB: db, URL: url, Addr: opts.Addr, owner: owner, admin: &admin0}
}

// Renew extends the claim on the database by its full TTL (15 minutes), for tests that
// run longer than that (the chaos suite's long form): a lapsed claim lets another test
// process take and flush the database. It fails if the claim is no longer this test's.
func (d *RealRedisDB) Renew(ctx context.Context) error {
	a := redis.NewClient(d.admin)
	defer a.Close()
	key := claimKeyPrefix + strconv.Itoa(d.DB)
	v, err := a.Get(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("renewing the claim on Redis database %d: %w", d.DB, err)
	}
	if v != d.owner {
		return fmt.Errorf("renewing the claim on Redis database %d: claimed by %q now", d.DB, v)
	}
	return a.Expire(ctx, key, claimTTL).Err()
}

// Backends runs f twice, as parallel subtests: against an embedded Redis ("miniredis") and
// against a database of the real one ("redis"). Code with Lua scripts should pass both:
// miniredis is fast, the real server is the truth.
func Backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		rdb, _ := testutil.NewEmbeddedRedis(t)
		f(t, rdb)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		f(t, RealRedis(t).Client)
	})
}
