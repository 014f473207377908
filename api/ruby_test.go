package api_test

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/internal/testsuite"
)

// sidekiqVersions are the Ruby Sidekiq versions the interop tests run: Debian's 6.4.1 and
// the shared peers' 8.1.7 (integer-millisecond timestamps).
var sidekiqVersions = []string{"sidekiq6", "sidekiq8"}

func makeState(t *testing.T, version, url string) {
	t.Helper()
	runRuby(t, version, url, rubyState+rubyMakeState)
}

func runRuby(t *testing.T, version, url, script string) string {
	t.Helper()
	if version == "sidekiq6" {
		testsuite.RequireRuby(t)
		return testsuite.Ruby(t, url, script)
	}
	return rubyPeer(t, version, url, script)
}

// rubyView is what Ruby's Sidekiq::API reports about the state, printed as JSON.
const rubyView = `
sets = {"retry" => Sidekiq::RetrySet.new, "dead" => Sidekiq::DeadSet.new, "schedule" => Sidekiq::ScheduledSet.new}
st = Sidekiq::Stats.new
out = {
  "processed" => st.processed, "failed" => st.failed, "scheduled" => st.scheduled_size,
  "retries" => st.retry_size, "dead" => st.dead_size, "enqueued" => st.enqueued,
  "queues" => Sidekiq::Queue.all.map { |q| [q.name, q.size, q.latency] },
  "sets" => sets.transform_values { |s| s.map { |e| {"jid" => e.jid, "class" => e.klass, "display_class" => e.display_class,
     "queue" => e.queue, "retry_count" => e["retry_count"], "error_class" => e["error_class"],
     "error_message" => e["error_message"], "score" => e.score.to_f} }.sort_by { |h| h["jid"] } },
}
puts JSON.generate(out)
`

type rubyEntry struct {
	JID          string  `json:"jid"`
	Class        string  `json:"class"`
	DisplayClass string  `json:"display_class"`
	Queue        string  `json:"queue"`
	RetryCount   *int    `json:"retry_count"`
	ErrorClass   string  `json:"error_class"`
	ErrorMessage string  `json:"error_message"`
	Score        float64 `json:"score"`
}

type rubyViewJSON struct {
	Processed, Failed, Scheduled, Retries, Dead, Enqueued int64
	Queues                                                [][3]any               `json:"queues"`
	Sets                                                  map[string][]rubyEntry `json:"sets"`
}

// TestReadsWhatRubyReads: for state Ruby Sidekiq made (its own client and retry
// handler), the Go API reports what Ruby's Sidekiq::API reports.
func TestReadsWhatRubyReads(t *testing.T) {
	t.Parallel()
	for _, version := range sidekiqVersions {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			db := testsuite.RealRedis(t)
			ctx := context.Background()
			makeState(t, version, db.URL)
			var rv rubyViewJSON
			out := runRuby(t, version, db.URL, rubyView)
			if err := json.Unmarshal([]byte(out), &rv); err != nil {
				t.Fatalf("ruby view %q: %v", out, err)
			}
			a := api.New(db.Client, nil)
			st, err := a.Stats(ctx)
			mustNoErr(t, err)
			if st.Scheduled != rv.Scheduled || st.Retries != rv.Retries || st.Dead != rv.Dead || st.Enqueued != rv.Enqueued ||
				st.Processed != rv.Processed || st.Failed != rv.Failed {
				t.Fatalf("stats %+v, Ruby %+v", st, rv)
			}
			if st.Retries != 4 || st.Dead != 2 || st.Scheduled != 2 || st.Enqueued != 3 {
				t.Fatalf("state not as made: %+v", st)
			}
			qs, err := a.Queues(ctx)
			mustNoErr(t, err)
			if len(qs) != len(rv.Queues) {
				t.Fatalf("queues %+v, Ruby %v", qs, rv.Queues)
			}
			for i, q := range qs {
				name, size, lat := rv.Queues[i][0].(string), int64(rv.Queues[i][1].(float64)), rv.Queues[i][2].(float64)
				if q.Name != name || q.Size != size {
					t.Fatalf("queue %d: %+v, Ruby %v", i, q, rv.Queues[i])
				}
				// Measured a moment apart; a misread unit (ms as s) is off by years.
				if math.Abs(q.Latency.Seconds()-lat) > 30 {
					t.Fatalf("queue %s latency %v, Ruby %.3fs", name, q.Latency, lat)
				}
			}
			for _, set := range []api.SetName{api.RetrySet, api.DeadSet, api.ScheduledSet} {
				var got []rubyEntry
				mustNoErr(t, a.Each(ctx, set, nil, func(e *api.Entry) error {
					re := rubyEntry{JID: e.JID(), Class: e.Class(), DisplayClass: e.DisplayClass(), Queue: e.Queue(), Score: e.Score}
					if e.Job == nil {
						t.Fatalf("Ruby's entry did not decode: %v", e.Err)
					}
					re.RetryCount, re.ErrorClass, re.ErrorMessage = e.Job.RetryCount, e.Job.ErrorClass, e.Job.ErrorMessage
					got = append(got, re)
					return nil
				}))
				sort.Slice(got, func(i, j int) bool { return got[i].JID < got[j].JID })
				if !reflect.DeepEqual(got, rv.Sets[string(set)]) {
					t.Fatalf("%s:\n go  %+v\n ruby %+v", set, got, rv.Sets[string(set)])
				}
			}
			// Ages come from Ruby's timestamps (milliseconds on 8): every retry failed just now.
			n := 0
			mustNoErr(t, a.Each(ctx, api.RetrySet, &api.Filter{NewerThan: 10 * time.Minute}, func(*api.Entry) error { n++; return nil }))
			if n != 4 {
				t.Fatalf("%d retries failed in the last 10 minutes, want 4 (timestamps misread?)", n)
			}
		})
	}
}

// copyState copies the sets and queues of one database into another, byte for byte.
func copyState(t *testing.T, from, to *redis.Client) {
	t.Helper()
	ctx := context.Background()
	for _, k := range []string{"retry", "dead", "schedule"} {
		zs := from.ZRangeWithScores(ctx, k, 0, -1).Val()
		if len(zs) > 0 {
			mustNoErr(t, to.ZAdd(ctx, k, zs...).Err())
		}
	}
	for _, q := range from.SMembers(ctx, "queues").Val() {
		mustNoErr(t, to.SAdd(ctx, "queues", q).Err())
		if vals := from.LRange(ctx, "queue:"+q, 0, -1).Val(); len(vals) > 0 {
			args := make([]any, len(vals))
			for i, v := range vals {
				args[i] = v
			}
			mustNoErr(t, to.RPush(ctx, "queue:"+q, args...).Err())
		}
	}
}

// queueContents is every queue's jobs, decoded, without enqueued_at (the moment of the
// push), sorted: what two runs of the same retry must agree on.
func queueContents(t *testing.T, rdb *redis.Client) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	for _, q := range rdb.SMembers(ctx, "queues").Val() {
		for _, v := range rdb.LRange(ctx, "queue:"+q, 0, -1).Val() {
			m := decode(t, v)
			if _, ok := m["enqueued_at"]; !ok {
				t.Fatalf("job in queue %s without enqueued_at: %s", q, v)
			}
			delete(m, "enqueued_at")
			b, _ := json.Marshal(m) // map keys sorted
			out[q] = append(out[q], string(b))
		}
		sort.Strings(out[q])
	}
	return out
}

// TestRetryMatchesRuby: Ruby's retry_all (retry and dead sets) and add_to_queue
// (schedule) on one copy of Ruby-made state, the Go API's Retry on another: the queues
// end up holding the same jobs, and Ruby sees the sets empty.
func TestRetryMatchesRuby(t *testing.T) {
	t.Parallel()
	for _, version := range sidekiqVersions {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			rubyDB, goDB := testsuite.RealRedis(t), testsuite.RealRedis(t)
			ctx := context.Background()
			makeState(t, version, rubyDB.URL)
			copyState(t, rubyDB.Client, goDB.Client)

			runRuby(t, version, rubyDB.URL, `
Sidekiq::RetrySet.new.retry_all
Sidekiq::DeadSet.new.retry_all
Sidekiq::ScheduledSet.new.each(&:add_to_queue)
`)
			a := api.New(goDB.Client, &api.Config{PageSize: 2})
			for _, set := range []api.SetName{api.RetrySet, api.DeadSet, api.ScheduledSet} {
				res, err := a.Retry(ctx, set, nil)
				mustNoErr(t, err)
				if res.Done != res.Matched || res.Matched == 0 {
					t.Fatalf("%s: %+v", set, res)
				}
			}
			want, got := queueContents(t, rubyDB.Client), queueContents(t, goDB.Client)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("queues after retry differ:\n go   %v\n ruby %v", got, want)
			}
			out := runRuby(t, version, goDB.URL, `
print [Sidekiq::RetrySet.new.size, Sidekiq::DeadSet.new.size, Sidekiq::ScheduledSet.new.size,
  Sidekiq::Queue.new("default").size, Sidekiq::Queue.new("critical").size, Sidekiq::Queue.new("low").size,
  Sidekiq::Queue.new("default").map { |j| j["retry_count"] }.compact.sort].inspect
`)
			if strings.TrimSpace(out) != "[0, 0, 0, 7, 2, 2, [-1, -1, -1, 0]]" {
				t.Fatalf("Ruby sees %s after Go's retry; want empty sets, 7/2/2 queued, retry counts one lower", out)
			}
		})
	}
}

// TestKillMatchesRuby: Ruby's kill_all and the Go API's Kill move the same bytes into
// the dead set.
func TestKillMatchesRuby(t *testing.T) {
	t.Parallel()
	for _, version := range sidekiqVersions {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			rubyDB, goDB := testsuite.RealRedis(t), testsuite.RealRedis(t)
			ctx := context.Background()
			makeState(t, version, rubyDB.URL)
			copyState(t, rubyDB.Client, goDB.Client)
			runRuby(t, version, rubyDB.URL, `Sidekiq::RetrySet.new.kill_all`)
			res, err := api.New(goDB.Client, nil).Kill(ctx, api.RetrySet, nil)
			mustNoErr(t, err)
			if res.Done != 4 {
				t.Fatalf("kill %+v", res)
			}
			want := rubyDB.Client.ZRange(ctx, "dead", 0, -1).Val()
			got := goDB.Client.ZRange(ctx, "dead", 0, -1).Val()
			sort.Strings(want)
			sort.Strings(got)
			if len(got) != 6 || !reflect.DeepEqual(got, want) {
				t.Fatalf("dead set after kill:\n go   %v\n ruby %v", got, want)
			}
			out := runRuby(t, version, goDB.URL, `print [Sidekiq::RetrySet.new.size, Sidekiq::DeadSet.new.size].inspect`)
			if strings.TrimSpace(out) != "[0, 6]" {
				t.Fatalf("Ruby sees %s", out)
			}
		})
	}
}

// TestNamespaceWithRuby: Sidekiq 6 on redis-namespace writes "ns:"-prefixed keys; the Go
// API with Namespace reads and retries them, and Ruby (namespaced) sees the result.
func TestNamespaceWithRuby(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	ns := `
require "redis/namespace"
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL"), namespace: "app" } }
`
	if _, err := testsuite.RunRuby(db.URL, ns+`print 1`); err != nil {
		testsuite.Unavailable(t, "redis-namespace not loadable (apt-get install ruby-redis-namespace): %v", err)
	}
	testsuite.Ruby(t, db.URL, ns+rubyState+rubyMakeState)
	if n := db.Client.ZCard(ctx, "app:retry").Val(); n != 4 {
		t.Fatalf("app:retry has %d entries; Ruby did not write namespaced keys", n)
	}
	a := api.New(db.Client, &api.Config{Namespace: "app"})
	st, err := a.Stats(ctx)
	mustNoErr(t, err)
	if st.Retries != 4 || st.Dead != 2 || st.Enqueued != 3 || len(st.Queues) != 3 {
		t.Fatalf("namespaced stats %+v", st)
	}
	res, err := a.Retry(ctx, api.RetrySet, &api.Filter{Class: "FailJob"})
	mustNoErr(t, err)
	if res.Done != 4 {
		t.Fatalf("retry %+v", res)
	}
	got := testsuite.Ruby(t, db.URL, ns+`print [Sidekiq::RetrySet.new.size, Sidekiq::Queue.new("default").size].inspect`)
	if strings.TrimSpace(got) != "[0, 6]" {
		t.Fatalf("namespaced Ruby sees %s, want [0, 6]", got)
	}
	if db.Client.Exists(ctx, "retry", "queue:default").Val() != 0 {
		t.Fatal("un-namespaced keys written")
	}
}
