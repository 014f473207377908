package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

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

// openBenchRedis connects to url, refusing database 0: every command flushes its database.
func openBenchRedis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if opt.DB == 0 {
		return nil, errors.New("refusing to flush database 0: pass a URL with another database, e.g. redis://127.0.0.1:6379/14")
	}
	opt.PoolSize = 64
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		rdb.Close()
		return nil, err
	}
	return rdb, nil
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
