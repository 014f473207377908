package api_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/testutil"
)

// fillRetries puts n retry entries in the set: jid "j<i>", class Even/Odd, many sharing a
// score (so pages split runs of equal scores), error "boom <i%3>".
func fillRetries(t *testing.T, rdb redis.UniversalClient, key string, n int) map[string]string {
	t.Helper()
	members := map[string]string{}
	for i := 0; i < n; i++ {
		class := "Even"
		if i%2 == 1 {
			class = "Odd"
		}
		jid := fmt.Sprintf("j%03d", i)
		m := payload(t, class, jid, "default", map[string]any{
			"retry_count": i % 4, "error_class": "RuntimeError", "error_message": fmt.Sprintf("boom %d", i%3),
			"failed_at": rawNum(secs(t0.Add(-time.Duration(i) * time.Minute))),
		})
		members[jid] = m
		zadd(t, rdb, key, score(t0.Add(time.Duration(i/5)*time.Second)), m) // 5 per score
	}
	return members
}

func TestEachPagesThroughTiesInOrder(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "", 3) // pages of 3 cut every run of 5 equal scores
		fillRetries(t, rdb, "retry", 23)
		var got []string
		mustNoErr(t, a.Each(ctx, api.RetrySet, nil, func(e *api.Entry) error {
			got = append(got, e.JID())
			return nil
		}))
		if len(got) != 23 {
			t.Fatalf("Each saw %d entries, want 23: %v", len(got), got)
		}
		seen := map[string]bool{}
		for i, j := range got {
			if seen[j] {
				t.Fatalf("entry %s seen twice", j)
			}
			seen[j] = true
			// Ascending scores: entry i has score group i/5.
			var n int
			fmt.Sscanf(j, "j%03d", &n)
			if n/5 != i/5 {
				t.Fatalf("order: %v", got)
			}
		}
	})
}

func TestDeadListsNewestFirst(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "", 2)
		for i := 0; i < 7; i++ {
			zadd(t, rdb, "dead", score(t0.Add(time.Duration(i)*time.Second)), payload(t, "D", fmt.Sprint("d", i), "q", nil))
		}
		var got []string
		mustNoErr(t, a.Each(ctx, api.DeadSet, nil, func(e *api.Entry) error {
			got = append(got, e.JID())
			if len(got) == 5 {
				return api.ErrStop
			}
			return nil
		}))
		if strings.Join(got, ",") != "d6,d5,d4,d3,d2" {
			t.Fatalf("dead order %v", got)
		}
	})
}

func TestFilter(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	a, _ := newAPI(rdb, "", 4)
	fillRetries(t, rdb, "retry", 30)
	aj := payload(t, "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", "aj1", "mailers", map[string]any{
		"wrapped": "WelcomeMailerJob", "args": []any{map[string]any{"job_class": "WelcomeMailerJob"}},
		"error_class": "Net::ReadTimeout", "error_message": "Net::ReadTimeout with #<TCPSocket>",
		"failed_at": t0.Add(-48 * time.Hour).UnixMilli(), // Sidekiq 8 milliseconds
	})
	zadd(t, rdb, "retry", score(t0.Add(time.Hour)), aj)
	zadd(t, rdb, "retry", score(t0.Add(time.Hour)), `{"not json`)

	tests := []struct {
		name string
		f    api.Filter
		want int
	}{
		{"all", api.Filter{}, 32},
		{"class exact", api.Filter{Class: "Even"}, 15},
		{"class glob", api.Filter{Class: "*dd"}, 15},
		{"wrapped class", api.Filter{Class: "WelcomeMailerJob"}, 1},
		{"wrapper class", api.Filter{Class: "ActiveJob::*"}, 1},
		{"queue", api.Filter{Queue: "mailers"}, 1},
		{"error text any case", api.Filter{Error: "BOOM 1"}, 10},
		{"error class", api.Filter{Error: "readtimeout"}, 1},
		{"older than (failed_at, ms too)", api.Filter{OlderThan: 25 * time.Minute}, 5 + 1},
		{"newer than", api.Filter{NewerThan: 10 * time.Minute}, 10},
		{"and", api.Filter{Class: "Odd", Error: "boom 0", NewerThan: 12 * time.Minute}, 2},
		{"jids", api.Filter{JIDs: []string{"j001", "j029", "nope"}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			mustNoErr(t, a.Each(ctx, api.RetrySet, &tt.f, func(*api.Entry) error { n++; return nil }))
			if n != tt.want {
				t.Fatalf("matched %d, want %d", n, tt.want)
			}
		})
	}
}

func TestRetryMovesToQueueAsRubyDoes(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "ns", 2)
		big := "12345678901234567890123"
		m := `{"retry":5,"queue":"critical","class":"Charge","args":[` + big + `,"x"],"jid":"c1",` +
			`"created_at":1700000000.25,"enqueued_at":1700000001.5,"failed_at":1700000002.75,` +
			`"retry_count":2,"error_class":"E","error_message":"m","tags":["a"],"cattr":{"u":1}}`
		zadd(t, rdb, "ns:retry", score(t0), m)
		noCount := `{"class":"NoCount","args":[],"jid":"c2"}`
		zadd(t, rdb, "ns:dead", score(t0), noCount)
		sched := `{"retry":true,"queue":"low","class":"Later","args":[1],"jid":"c3","created_at":1700000000.5,"retry_count":3}`
		zadd(t, rdb, "ns:schedule", score(t0.Add(time.Hour)), sched)

		res, err := a.Retry(ctx, api.RetrySet, nil)
		mustNoErr(t, err)
		if res.Matched != 1 || res.Done != 1 || res.Gone != 0 {
			t.Fatalf("retry result %+v", res)
		}
		got := rdb.LRange(ctx, "ns:queue:critical", 0, -1).Val()
		if len(got) != 1 {
			t.Fatalf("queue:critical = %v", got)
		}
		if !strings.Contains(got[0], `"args":[`+big+`,"x"]`) {
			t.Fatalf("args changed: %s", got[0])
		}
		j := decode(t, got[0])
		if j["retry_count"].(interface{ String() string }).String() != "1" {
			t.Fatalf("retry_count = %v, want 1 (decremented)", j["retry_count"])
		}
		if enq := fmt.Sprint(j["enqueued_at"]); enq != fmt.Sprintf("%d.0", t0.Unix()) {
			t.Fatalf("enqueued_at = %s, want now as float seconds (%d.0)", enq, t0.Unix())
		}
		if fmt.Sprint(j["created_at"]) != "1700000000.25" || fmt.Sprint(j["failed_at"]) != "1700000002.75" {
			t.Fatalf("timestamps rewritten: %s", got[0])
		}
		if fmt.Sprint(j["tags"]) != "[a]" || fmt.Sprint(j["retry"]) != "5" || j["error_class"] != "E" {
			t.Fatalf("fields lost: %s", got[0])
		}
		if !rdb.SIsMember(ctx, "ns:queues", "critical").Val() {
			t.Fatal("queue not added to ns:queues")
		}
		if rdb.ZCard(ctx, "ns:retry").Val() != 0 {
			t.Fatal("retry set not empty")
		}

		// Dead: a payload without queue, retry or retry_count gets Sidekiq's defaults.
		res, err = a.Retry(ctx, api.DeadSet, &api.Filter{JIDs: []string{"c2"}})
		mustNoErr(t, err)
		if res.Done != 1 {
			t.Fatalf("dead retry %+v", res)
		}
		j = decode(t, rdb.LIndex(ctx, "ns:queue:default", 0).Val())
		if j["retry"] != true || j["queue"] != "default" || j["retry_count"] != nil || j["created_at"] == nil {
			t.Fatalf("defaults not applied: %v", j)
		}

		// Scheduled: add_to_queue, retry_count unchanged.
		res, err = a.Retry(ctx, api.ScheduledSet, &api.Filter{Class: "Later"})
		mustNoErr(t, err)
		if res.Done != 1 {
			t.Fatalf("scheduled retry %+v", res)
		}
		j = decode(t, rdb.LIndex(ctx, "ns:queue:low", 0).Val())
		if fmt.Sprint(j["retry_count"]) != "3" {
			t.Fatalf("scheduled job's retry_count changed: %v", j["retry_count"])
		}
	})
}

func TestRetrySkipsInvalidPayloads(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "", 0)
		zadd(t, rdb, "dead", 1, `{"broken`)
		zadd(t, rdb, "dead", 2, `{"jid":"noclass","args":[]}`)
		zadd(t, rdb, "dead", 3, payload(t, "Fine", "ok1", "default", nil))
		res, err := a.Retry(ctx, api.DeadSet, nil)
		mustNoErr(t, err)
		if res.Matched != 3 || res.Done != 1 || res.Skipped != 2 || len(res.Skips) != 2 || res.Skips[1].JID != "noclass" {
			t.Fatalf("result %+v", res)
		}
		if n := rdb.ZCard(ctx, "dead").Val(); n != 2 {
			t.Fatalf("dead set has %d entries, want the 2 invalid ones left in place", n)
		}
		// Delete takes them by value.
		res, err = a.Delete(ctx, api.DeadSet, nil)
		mustNoErr(t, err)
		if res.Done != 2 || rdb.ZCard(ctx, "dead").Val() != 0 {
			t.Fatalf("delete result %+v", res)
		}
	})
}

func TestKillTrimsTheDeadSet(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		clk := testutil.NewFakeClock(t0)
		a := api.New(rdb, &api.Config{Clock: clk, DeadMaxJobs: 5, DeadTimeout: 24 * time.Hour, PageSize: 2})
		zadd(t, rdb, "dead", score(t0.Add(-48*time.Hour)), payload(t, "Old", "old", "q", nil))
		for i := 0; i < 3; i++ {
			zadd(t, rdb, "dead", score(t0.Add(-time.Duration(i+1)*time.Minute)), payload(t, "D", fmt.Sprint("d", i), "q", nil))
		}
		want := map[string]bool{}
		for i := 0; i < 4; i++ {
			m := payload(t, "K", fmt.Sprint("k", i), "q", nil)
			want[m] = true
			zadd(t, rdb, "retry", score(t0.Add(time.Duration(i)*time.Second)), m)
		}
		zadd(t, rdb, "retry", score(t0), `{"invalid json`)
		res, err := a.Kill(ctx, api.RetrySet, nil)
		mustNoErr(t, err)
		if res.Done != 5 || res.Matched != 5 {
			t.Fatalf("kill %+v", res)
		}
		// 3 + 5 killed = 8, minus the 48 h old one (timeout), trimmed to 5-1 = 4 newest
		// (ZREMRANGEBYRANK 0 -5 keeps 4, as Sidekiq's does).
		dead := rdb.ZRangeWithScores(ctx, "dead", 0, -1).Val()
		if len(dead) != 4 {
			t.Fatalf("dead set has %d entries, want 4: %v", len(dead), dead)
		}
		for _, z := range dead {
			if z.Score != score(t0) {
				t.Fatalf("kept an entry not killed now: %v", z)
			}
			if m := z.Member.(string); !want[m] && m != `{"invalid json` {
				t.Fatalf("member rewritten: %s", m)
			}
		}
		if _, err := a.Kill(ctx, api.DeadSet, nil); !errors.Is(err, api.ErrAlreadyDead) {
			t.Fatalf("kill of dead entries: %v", err)
		}
	})
}

func TestApplyWithFilterLeavesTheRest(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "", 3)
		members := fillRetries(t, rdb, "retry", 41)
		res, err := a.Delete(ctx, api.RetrySet, &api.Filter{Class: "Odd"})
		mustNoErr(t, err)
		if res.Matched != 20 || res.Done != 20 {
			t.Fatalf("delete %+v", res)
		}
		left := rdb.ZRange(ctx, "retry", 0, -1).Val()
		if len(left) != 21 {
			t.Fatalf("%d left, want the 21 Even entries", len(left))
		}
		for _, m := range left {
			if !strings.Contains(m, `"class":"Even"`) {
				t.Fatalf("deleted the wrong entries; left %s", m)
			}
		}
		// By jid, with one missing.
		res, err = a.Kill(ctx, api.RetrySet, &api.Filter{JIDs: []string{"j000", "j002", "j001", "zzz"}})
		mustNoErr(t, err)
		sort.Strings(res.NotFound)
		if res.Done != 2 || strings.Join(res.NotFound, ",") != "j001,zzz" {
			t.Fatalf("kill by jid %+v", res)
		}
		if err := rdb.ZScore(ctx, "dead", members["j002"]).Err(); err != nil {
			t.Fatalf("j002 not in the dead set: %v", err)
		}
	})
}

// TestApplyKeepsUpWithAPoller: entries taken from the front of the set while a bulk
// action pages through it must not make it skip any other entry.
func TestApplyKeepsUpWithAPoller(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "", 4)
		fillRetries(t, rdb, "retry", 40)
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		popped := make(chan int)
		go func() {
			n := 0
			for ctx2.Err() == nil {
				if zs, err := rdb.ZPopMin(ctx2, "retry", 1).Result(); err == nil && len(zs) == 1 {
					n++
				}
				if n >= 10 {
					break
				}
			}
			popped <- n
		}()
		res, err := a.Retry(ctx, api.RetrySet, nil)
		mustNoErr(t, err)
		cancel() // the poller may not have reached 10 when the retry was done
		n := <-popped
		if res.Done+n != 40 || rdb.ZCard(ctx, "retry").Val() != 0 {
			t.Fatalf("retried %d, poller took %d, %d left: some entry was skipped (result %+v)",
				res.Done, n, rdb.ZCard(ctx, "retry").Val(), res)
		}
	})
}

func TestUnknownSetRefused(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	a, _ := newAPI(rdb, "", 0)
	ctx := context.Background()
	if _, err := a.Size(ctx, "scheduled"); err == nil {
		t.Fatal("Size of a set named by its alias accepted")
	}
	if _, err := a.Delete(ctx, "queues", nil); err == nil {
		t.Fatal("Delete on a non-set key accepted")
	}
	if err := a.Each(ctx, "", nil, func(*api.Entry) error { return nil }); err == nil {
		t.Fatal("Each on an empty set name accepted")
	}
	for in, want := range map[string]api.SetName{"scheduled": api.ScheduledSet, "Retries": api.RetrySet, "morgue": api.DeadSet} {
		if got, err := api.ParseSetName(in); err != nil || got != want {
			t.Fatalf("ParseSetName(%q) = %q, %v", in, got, err)
		}
	}
}
