package testutil

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/clock"
)

// NewEmbeddedRedis starts an in-process Redis for one test and returns a client for it and
// the server (to move its clock with FastForward or inspect keys). Both are closed when the
// test ends. It supports Lua scripts but not every command of a real Redis; use RealRedis
// where that matters.
func NewEmbeddedRedis(tb testing.TB) (*redis.Client, *miniredis.Miniredis) {
	tb.Helper()
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb, mr
}

// FakeClock is a clock that only moves when told to, for Config.Clock and ClientConfig.Clock.
type FakeClock = clock.Fake

// NewFakeClock returns a FakeClock set to t.
func NewFakeClock(t time.Time) *FakeClock { return clock.NewFake(t) }
