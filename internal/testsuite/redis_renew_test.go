package testsuite

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRealRedisRenew(t *testing.T) {
	db := RealRedis(t)
	ctx := context.Background()
	admin := redis.NewClient(db.admin)
	defer admin.Close()
	key := claimKeyPrefix + strconv.Itoa(db.DB)
	if err := admin.Expire(ctx, key, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := db.Renew(ctx); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if ttl := admin.TTL(ctx, key).Val(); ttl <= time.Minute {
		t.Fatalf("claim TTL after Renew = %v, want about %v", ttl, claimTTL)
	}
	owner := db.owner
	db.owner = "someone else"
	if err := db.Renew(ctx); err == nil {
		t.Fatal("Renew of a claim held by another owner succeeded")
	}
	db.owner = owner
}
