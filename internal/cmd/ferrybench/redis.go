package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultRedisURL is database 14 of REDIS_URL's server, or of the local Redis.
func defaultRedisURL() string {
	base := os.Getenv("REDIS_URL")
	if base == "" {
		base = "redis://127.0.0.1:6379"
	}
	opt, err := redis.ParseURL(base)
	if err != nil {
		return base
	}
	opt.DB = 14
	return fmt.Sprintf("redis://%s/%d", opt.Addr, opt.DB)
}

// claimPrefix is the key (in database 0) by which the test suite's testutil.RealRedis marks
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
		return nil, err
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
