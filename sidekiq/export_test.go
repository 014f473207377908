package sidekiq

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// BenchStore exposes the store's fetch and ack to the benchmarks of package sidekiq_test.
type BenchStore struct{ st *store }

// NewStoreForBench returns a store of process identity working one queue.
func NewStoreForBench(rdb redis.UniversalClient, identity, queue string) *BenchStore {
	return &BenchStore{newStore(rdb, newKeyspace(""), identity, []queueSpec{{name: queue}})}
}

// Fetch takes up to want jobs with seqs from base+1 and returns their fields.
func (b *BenchStore) Fetch(ctx context.Context, want int, base uint64) ([]string, error) {
	units, err := b.st.fetch(ctx, fetchRequest{order: []int{0}, allow: []int{-1}, want: want, budget: 8 << 20, base: base})
	fields := make([]string, len(units))
	for i, u := range units {
		fields[i] = u.field
	}
	return fields, err
}

// Ack acknowledges fields.
func (b *BenchStore) Ack(ctx context.Context, fields []string) error { return b.st.ack(ctx, fields) }
