package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/testutil"
)

// t0 is the fake "now" of the unit tests.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newAPI(rdb redis.UniversalClient, ns string, pageSize int) (*api.API, *testutil.FakeClock) {
	clk := testutil.NewFakeClock(t0)
	return api.New(rdb, &api.Config{Namespace: ns, PageSize: pageSize, Clock: clk}), clk
}

// secs writes t as Sidekiq 6/7 float seconds.
func secs(t time.Time) string {
	return fmt.Sprintf("%.6f", float64(t.UnixNano())/1e9)
}

// payload builds a job payload as Ruby writes it, with extra fields merged in.
func payload(tb testing.TB, class, jid, queue string, extra map[string]any) string {
	tb.Helper()
	m := map[string]any{"class": class, "jid": jid, "queue": queue, "args": []any{1, "two"}, "retry": true,
		"created_at": json.RawMessage(secs(t0.Add(-time.Hour)))}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func zadd(tb testing.TB, rdb redis.UniversalClient, key string, score float64, member string) {
	tb.Helper()
	if err := rdb.ZAdd(context.Background(), key, redis.Z{Score: score, Member: member}).Err(); err != nil {
		tb.Fatal(err)
	}
}

func score(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func mustNoErr(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// decode parses a payload into a map, numbers as json.Number.
func decode(tb testing.TB, s string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decoding %q: %v", s, err)
	}
	return m
}
