package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/internal/testsuite"
)

func TestProcessesAndWorkers(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "ns", 0)
		// Sidekiq 6.4.1: info.concurrency, running jobs in :workers.
		ruby6 := "vm:10573:d368e4e0ddcd"
		// Sidekiq 8.1.2+: concurrency as a hash field, capsules, running jobs in :work.
		ruby8 := "vm:2000:aaaaaaaaaaaa"
		// Ferry: both :work and :workers, label and version.
		ferry := "gohost:3000:bbbbbbbbbbbb"
		gone := "vm:9:expired"
		mustNoErr(t, rdb.SAdd(ctx, "ns:processes", ruby6, ruby8, ferry, gone).Err())
		mustNoErr(t, rdb.HSet(ctx, "ns:"+ruby6,
			"info", `{"hostname":"vm","started_at":1795352605.314923,"pid":10573,"tag":"mytag","concurrency":3,"queues":["default","low"],"labels":[],"identity":"vm:10573:d368e4e0ddcd"}`,
			"busy", "1", "beat", "1795352615.327811", "quiet", "false", "rss", "30364", "rtt_us", "129").Err())
		mustNoErr(t, rdb.HSet(ctx, "ns:"+ruby6+":workers", "8u9",
			`{"queue":"default","payload":"{\"retry\":true,\"queue\":\"default\",\"class\":\"SlowJob\",\"args\":[],\"jid\":\"w1\"}","run_at":1795352605}`).Err())
		mustNoErr(t, rdb.HSet(ctx, "ns:"+ruby8,
			"info", `{"hostname":"vm","started_at":1795352000.5,"pid":2000,"tag":"","labels":["x"],"identity":"vm:2000:aaaaaaaaaaaa","version":"8.1.7","embedded":true,"queues":["old"],"capsules":{"default":{"concurrency":5,"mode":"weighted","weights":{"critical":3,"default":1}},"io":{"concurrency":2,"mode":"strict","weights":{"default":0,"io":0}}}}`,
			"concurrency", "7", "busy", "0", "beat", "1795352616.0", "quiet", "true", "rss", "1", "rtt_us", "2").Err())
		// An object payload (Sidekiq < 6.0.2) is read too.
		mustNoErr(t, rdb.HSet(ctx, "ns:"+ruby8+":work", "t1",
			`{"queue":"io","payload":{"class":"IoJob","args":[1],"jid":"w2"},"run_at":1795352600}`).Err())
		mustNoErr(t, rdb.HSet(ctx, "ns:"+ferry,
			"info", `{"hostname":"gohost","started_at":1795352001.25,"pid":3000,"tag":"","concurrency":10,"queues":["go"],"weights":[{"go":0}],"labels":["ferry"],"identity":"gohost:3000:bbbbbbbbbbbb","version":"ferry-0.1.0","embedded":false}`,
			"concurrency", "10", "busy", "1", "beat", "1795352617.0", "quiet", "false", "rss", "15000", "rtt_us", "80").Err())
		w := `{"queue":"go","payload":"{\"class\":\"GoJob\",\"args\":[],\"jid\":\"w3\"}","run_at":1795352610}`
		mustNoErr(t, rdb.HSet(ctx, "ns:"+ferry+":work", "g1", w).Err())
		mustNoErr(t, rdb.HSet(ctx, "ns:"+ferry+":workers", "g1", w).Err())
		mustNoErr(t, rdb.HSet(ctx, "ns:"+gone+":work", "z", `{"queue":"x","payload":"{}","run_at":1}`).Err())

		procs, err := a.Processes(ctx)
		mustNoErr(t, err)
		if len(procs) != 3 {
			t.Fatalf("processes %+v: want 3 (the expired one left out)", procs)
		}
		byID := map[string]api.Process{}
		for _, p := range procs {
			byID[p.Identity] = p
		}
		p6, p8, pf := byID[ruby6], byID[ruby8], byID[ferry]
		if p6.Concurrency != 3 || p6.Busy != 1 || p6.Tag != "mytag" || p6.PID != 10573 || p6.RSSKB != 30364 ||
			p6.RTT != 129*time.Microsecond || p6.Quiet || strings.Join(p6.Queues, ",") != "default,low" ||
			p6.Runtime() != "ruby" || p6.StartedAt.Unix() != 1795352605 || p6.Beat.Unix() != 1795352615 {
			t.Fatalf("sidekiq 6 process %+v", p6)
		}
		if p8.Concurrency != 7 || !p8.Quiet || !p8.Embedded || strings.Join(p8.Queues, ",") != "critical,default,io" || p8.Version != "8.1.7" {
			t.Fatalf("sidekiq 8 process %+v", p8)
		}
		if pf.Runtime() != "go" || pf.Concurrency != 10 {
			t.Fatalf("ferry process %+v", pf)
		}

		works, err := a.Workers(ctx)
		mustNoErr(t, err)
		if len(works) != 3 {
			t.Fatalf("workers %+v: want 3 (Ferry's mirrored :workers not counted twice)", works)
		}
		// Oldest first.
		if works[0].Job.JID != "w2" || works[1].Job.JID != "w1" || works[2].Job.JID != "w3" || works[0].Queue != "io" ||
			works[1].Thread != "8u9" || works[2].Process != ferry {
			t.Fatalf("workers order/contents %+v", works)
		}

		// Signals.
		mustNoErr(t, a.Quiet(ctx, ruby6))
		mustNoErr(t, a.Stop(ctx, ferry))
		if got := rdb.LRange(ctx, "ns:"+ruby6+"-signals", 0, -1).Val(); len(got) != 1 || got[0] != "TSTP" {
			t.Fatalf("signals of %s: %v", ruby6, got)
		}
		if got := rdb.LRange(ctx, "ns:"+ferry+"-signals", 0, -1).Val(); len(got) != 1 || got[0] != "TERM" {
			t.Fatalf("signals of %s: %v", ferry, got)
		}
		if ttl := rdb.TTL(ctx, "ns:"+ferry+"-signals").Val(); ttl <= 0 || ttl > 60*time.Second {
			t.Fatalf("signals TTL %v, want 60s", ttl)
		}
		if err := a.Quiet(ctx, ruby8); !errors.Is(err, api.ErrEmbedded) {
			t.Fatalf("quiet of an embedded process: %v", err)
		}
		if err := a.Stop(ctx, gone); !errors.Is(err, api.ErrProcessNotFound) {
			t.Fatalf("stop of an expired process: %v", err)
		}
		if err := a.Quiet(ctx, "nobody"); !errors.Is(err, api.ErrProcessNotFound) {
			t.Fatalf("quiet of an unknown process: %v", err)
		}

		n, err := a.CleanupProcesses(ctx)
		mustNoErr(t, err)
		if n != 1 || rdb.SIsMember(ctx, "ns:processes", gone).Val() {
			t.Fatalf("cleanup removed %d", n)
		}
		if n, _ := a.CleanupProcesses(ctx); n != 0 {
			t.Fatal("cleanup ran twice within a minute")
		}
	})
}

func TestQueueWalkAndDelete(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		a, _ := newAPI(rdb, "", 3)
		// LPUSH: q0 is the oldest, at the tail.
		for i := 0; i < 10; i++ {
			class := "Keep"
			if i%3 == 0 {
				class = "Drop"
			}
			mustNoErr(t, rdb.LPush(ctx, "queue:q", payload(t, class, "q"+string(rune('0'+i)), "q", nil)).Err())
		}
		var order []string
		mustNoErr(t, a.EachInQueue(ctx, "q", nil, func(e *api.Entry) error {
			order = append(order, e.JID())
			return nil
		}))
		if strings.Join(order, "") != "q0q1q2q3q4q5q6q7q8q9" {
			t.Fatalf("order %v, want oldest first", order)
		}
		res, err := a.DeleteFromQueue(ctx, "q", &api.Filter{Class: "Drop"})
		mustNoErr(t, err)
		if res.Done != 4 {
			t.Fatalf("delete %+v, want 4 (q0 q3 q6 q9)", res)
		}
		left := rdb.LRange(ctx, "queue:q", 0, -1).Val()
		if len(left) != 6 {
			t.Fatalf("left %d", len(left))
		}
		for _, m := range left {
			if strings.Contains(m, "Drop") {
				t.Fatalf("left %s", m)
			}
		}
		if _, err := a.DeleteFromQueue(ctx, "q", nil); err == nil {
			t.Fatal("DeleteFromQueue without a filter accepted")
		}
		mustNoErr(t, rdb.SAdd(ctx, "queues", "q").Err())
		mustNoErr(t, a.ClearQueue(ctx, "q"))
		if rdb.Exists(ctx, "queue:q").Val() != 0 || rdb.SIsMember(ctx, "queues", "q").Val() {
			t.Fatal("ClearQueue left the queue")
		}
	})
}
