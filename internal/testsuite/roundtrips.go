package testsuite

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips counts the calls a go-redis client makes to Redis: one per command sent alone,
// one per pipeline or MULTI/EXEC. Install it with the client's AddHook; it shows that a
// feature costs no extra round trip without timing anything.
//
//	rt := &testsuite.RoundTrips{}
//	rdb.AddHook(rt)
//	// ... push ...
//	if rt.N() != 1 { ... }
type RoundTrips struct{ n atomic.Int64 }

// N returns how many round trips have been counted.
func (r *RoundTrips) N() int64 { return r.n.Load() }

// Reset sets the count back to zero.
func (r *RoundTrips) Reset() { r.n.Store(0) }

// DialHook implements redis.Hook; dialing is not counted.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook: one round trip per command.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook: one round trip per pipeline or transaction.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}
