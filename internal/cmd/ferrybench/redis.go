package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redact"
)

// defaultRedisURL is database 14 of REDIS_URL's server (with its credentials), or of the
// local Redis.
func defaultRedisURL() string {
	base := os.Getenv("REDIS_URL")
	if base == "" {
		base = "redis://127.0.0.1:6379"
	}
	u, err := url.Parse(base)
	if err != nil {
		return base // openBenchRedis reports it, password masked
	}
	u.Path = "/14"
	q := u.Query()
	if q.Has("db") {
		q.Del("db")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redisFlag defines the -redis flag. Its default comes from REDIS_URL, so the usage text
// shows it with the password masked.
func redisFlag(fs *flag.FlagSet) *string {
	u := fs.String("redis", defaultRedisURL(), "Redis URL; its database is FLUSHED (database 0 is refused)")
	fs.Lookup("redis").DefValue = redact.URL(*u)
	return u
}

// claimPrefix is the key (in database 0) by which the test suite's testsuite.RealRedis marks
// a database as in use; ferrybench takes the same claim so the two never flush each other's
// database.
const claimPrefix = "ferry-test:claim:"

// benchRedis is the flushed database ferrybench works in, claimed while it runs.
type benchRedis struct {
	*redis.Client
	admin *redis.Client
	claim string
}

// Close releases the claim and the connections.
func (b *benchRedis) Close() error {
	b.admin.Del(context.Background(), b.claim)
	b.admin.Close()
	return b.Client.Close()
}

// openBenchRedis connects to url, refusing database 0 (every command flushes its database)
// and a database the test suite has claimed.
func openBenchRedis(url string) (*benchRedis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", redact.Error(err, url))
	}
	if opt.DB == 0 {
		return nil, errors.New("refusing to flush database 0: pass a URL with another database, e.g. redis://127.0.0.1:6379/14")
	}
	ctx := context.Background()
	adminOpt := *opt
	adminOpt.DB = 0
	admin := redis.NewClient(&adminOpt)
	claim := claimPrefix + strconv.Itoa(opt.DB)
	ok, err := admin.SetNX(ctx, claim, fmt.Sprintf("ferrybench pid %d", os.Getpid()), 30*time.Minute).Result()
	if err != nil {
		admin.Close()
		return nil, err
	}
	if !ok {
		holder, _ := admin.Get(ctx, claim).Result()
		admin.Close()
		return nil, fmt.Errorf("database %d is in use (%s); wait or pass another -redis", opt.DB, holder)
	}
	opt.PoolSize = 64
	rdb := redis.NewClient(opt)
	b := &benchRedis{Client: rdb, admin: admin, claim: claim}
	if err := rdb.Ping(ctx).Err(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// peakRSS returns a process's peak resident set size (VmHWM) in kB, or 0 when unknown.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := bytes.Fields(sc.Bytes()); len(f) >= 2 && string(f[0]) == "VmHWM:" {
			kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
			return kb
		}
	}
	return 0
}
