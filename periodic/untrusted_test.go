package periodic

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ferryhq/ferry/internal/clock"
	"github.com/ferryhq/ferry/internal/testsuite"
)

// TestHostileCronJobs: cron jobs written into Redis by anyone, malformed in every way we
// could think of, make Ferry write no key outside the valid job's sidekiq-cron keys, its
// queue and its own ferry:cron: keys; each bad job is logged once in 50
// passes (not once per pass), with bounded fields; nothing panics; and the valid job
// beside them still runs on every tick.
func TestHostileCronJobs(t *testing.T) {
	t.Parallel()
	testsuite.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		huge := strings.Repeat("x", 200<<10)
		hostile := []map[string]string{
			{"name": "evil-queue", "cron": "* * * * * *", "klass": "E", "message": `{"class":"E","queue":"a\nb","args":[]}`},
			{"name": "long-queue", "cron": "* * * * * *", "klass": "E", "message": `{"class":"E","queue":"` + strings.Repeat("q", 600) + `","args":[]}`},
			{"name": "bad-spec", "cron": "CRON_TZ=UTC", "klass": "E"},
			{"name": "bad-spec-2", "cron": "0 3 L * *", "klass": "E"},
			{"name": "huge-spec", "cron": huge, "klass": "E"},
			{"name": "huge-message", "cron": "* * * * * *", "klass": "E", "message": `{"class":"E","args":["` + huge + `"]}`},
			{"name": "no-class", "cron": "* * * * * *"},
			{"name": "bad-message", "cron": "* * * * * *", "klass": "E", "message": "{not json"},
			{"name": "object-args", "cron": "* * * * * *", "klass": "E", "args": `{"a":1}`},
			{"name": "mismatch", "cron": "* * * * * *", "klass": "E"}, // name field rewritten below
			{"name": "../../etc", "cron": "* * * * * *", "klass": "E", "status": "", "message": `{"class":"E","queue":"dotdot","args":[]}`},
			{"name": "disabled-odd", "cron": "* * * * * *", "klass": "E", "status": "ENABLED", "message": `{"class":"E","queue":"odd","args":[]}`},
		}
		for _, h := range hostile {
			writeRubyJob(t, rdb, "", h)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(rdb.HSet(ctx, "cron_job:mismatch", "name", "other").Err())
		must(rdb.SAdd(ctx, "cron_jobs", "queue:evil", "cron_job:", "cron_job:list", "stat:processed", "cron_job:"+huge).Err())
		must(rdb.RPush(ctx, "cron_job:list", "x").Err())
		must(rdb.HSet(ctx, "cron_job:"+strings.Repeat("n", 2000), "name", strings.Repeat("n", 2000), "cron", "* * * * * *", "klass", "E").Err())
		must(rdb.SAdd(ctx, "cron_jobs", "cron_job:"+strings.Repeat("n", 2000)).Err())
		must(rdb.ZAdd(ctx, "ferry:cron:pending", redis.Z{Score: 1, Member: "not json"}).Err())
		// And one good job.
		writeRubyJob(t, rdb, "", map[string]string{"name": "good", "cron": "* * * * * *", "klass": "GoodJob",
			"message": `{"class":"GoodJob","queue":"good","args":[1]}`, "args": "[1]"})
		before := map[string]bool{}
		for _, k := range allKeys(t, rdb) {
			before[k] = true
		}

		core, logs := observer.New(zapcore.InfoLevel)
		clk := clock.NewFake(base)
		s := newTestScheduler(t, rdb, clk, Config{Location: time.UTC, Logger: zap.New(core), RefreshInterval: time.Second})
		for range 50 {
			mustPass(t, s)
			clk.Advance(time.Second)
		}
		// Passes at seconds 0.2 to 49.2: ticks 0 to 49 (written without an enqueued set,
		// the job's latest tick at start runs, as a sidekiq-cron poller would run it).
		if n := len(queueJobs(t, rdb, "queue:good")); n != 50 {
			t.Fatalf("good job: %d jobs in 50 passes, want 50", n)
		}
		for _, k := range allKeys(t, rdb) {
			if before[k] {
				continue
			}
			ok := k == "queue:good" || k == "queues" || strings.HasPrefix(k, "cron_job:good:") ||
				strings.HasPrefix(k, "ferry:cron:pushed:")
			if !ok {
				t.Errorf("Ferry wrote key %q", cutKey(k))
			}
		}
		if q := rdb.SMembers(ctx, "queues").Val(); len(q) != 1 || q[0] != "good" {
			t.Errorf("queues set = %v", q)
		}
		skipped := logs.FilterMessage("periodic: skipping a cron job that cannot be run").All()
		perJob := map[string]int{}
		for _, e := range skipped {
			for _, f := range e.Context {
				if len(f.String) > 600 {
					t.Errorf("log field %s holds %d bytes", f.Key, len(f.String))
				}
			}
			perJob[e.ContextMap()["job"].(string)]++
		}
		for job, n := range perJob {
			if n != 1 {
				t.Errorf("job %q logged %d times", cutKey(job), n)
			}
		}
		// 10 bad hashes, plus the members queue:evil, cron_job:, cron_job:list,
		// stat:processed and two overlong names; "../../etc" (status "") and "disabled-odd" (status "ENABLED")
		// are valid but disabled, as sidekiq-cron reads them.
		if len(skipped) != 16 {
			for _, e := range skipped {
				t.Logf("%v", e.ContextMap()["problem"])
			}
			t.Fatalf("%d jobs logged as skipped, want 16", len(skipped))
		}
		for _, q := range []string{"queue:dotdot", "queue:odd"} {
			if n := rdb.LLen(ctx, q).Val(); n != 0 {
				t.Errorf("disabled job enqueued into %s", q)
			}
		}
		if n := rdb.ZCard(ctx, "ferry:cron:pending").Val(); n != 0 {
			t.Errorf("unreadable pending claim kept")
		}
		infos, err := List(ctx, rdb, "")
		if err != nil {
			t.Fatal(err)
		}
		var good *JobInfo
		bad := 0
		for i := range infos {
			if infos[i].Name == "good" {
				good = &infos[i]
			}
			if infos[i].Err != nil {
				bad++
			}
		}
		if good == nil || good.Err != nil || good.LastEnqueue.IsZero() || good.Next.IsZero() || good.Queue != "good" || !good.Enabled() {
			t.Fatalf("List: good = %+v", good)
		}
		if bad != 16 {
			t.Fatalf("List: %d jobs with errors, want 16", bad)
		}
	})
}

func cutKey(k string) string {
	if len(k) > 80 {
		return k[:80] + "..."
	}
	return k
}
