package interop

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// rubyStats prints what Sidekiq::Stats, Sidekiq::Stats::History and Sidekiq::Queue#latency
// say once Sidekiq's API sees FERRY_PROCESSED jobs processed.
const rubyStats = `
processed = Integer(ENV.fetch("FERRY_PROCESSED"))
deadline = Time.now + 15
sleep 0.05 until Sidekiq::Stats.new.processed >= processed || Time.now > deadline
s = Sidekiq::Stats.new
h = Sidekiq::Stats::History.new(2)
puts JSON.generate({
  "processed" => s.processed, "failed" => s.failed, "enqueued" => s.enqueued,
  "scheduled_size" => s.scheduled_size, "retry_size" => s.retry_size, "dead_size" => s.dead_size,
  "processes_size" => s.processes_size, "workers_size" => s.workers_size, "queues" => s.queues,
  "history_processed" => h.processed, "history_failed" => h.failed,
  "latency" => Sidekiq::Queue.all.to_h { |q| [q.name, q.latency] },
  "today" => Time.now.utc.strftime("%Y-%m-%d"),
})
`

// TestSidekiqStatsCountGoJobs: after a Go Server ran 6 jobs that succeed and 2 that fail
// (one to the retry set, one to the dead set), with 1 job blocked in its handler, 3
// waiting in queue "waiting" and 1 scheduled, each release's Sidekiq::Stats reports
// processed 8, failed 2, enqueued 3 (by queue as well), scheduled 1, retries 1, dead 1,
// 1 process and 1 busy worker; Stats::History has today's 8 processed and 2 failed; and
// Queue#latency of the waiting queue is a few seconds at most. On 8.x a job pushed with
// TimeMillis (integer-millisecond enqueued_at, which only 8.x reads) has a sane latency
// too.
func TestSidekiqStatsCountGoJobs(t *testing.T) {
	t.Parallel()
	testsuite.ForEachSidekiq(t, testSidekiqStatsCountGoJobs)
}

func testSidekiqStatsCountGoJobs(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	b := newBlocker()
	srv := sidekiq.NewServer(db.Client, &sidekiq.Config{
		Concurrency:       3,
		Queues:            []string{"stats"},
		HeartbeatInterval: 100 * time.Millisecond,
	})
	srv.Handle("OkJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return nil }))
	srv.Handle("FailJob", sidekiq.HandlerFunc(func(context.Context, *sidekiq.Job) error { return errors.New("nope") }))
	srv.Handle("BlockJob", b)
	runGoServer(t, db, srv)
	defer b.release()
	c := sidekiq.NewClient(db.Client, nil)
	ok := make([][]any, 6)
	for i := range ok {
		ok[i] = []any{i}
	}
	if _, err := c.PushBulk(ctx, "OkJob", ok, sidekiq.Queue("stats")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "FailJob", []any{"retried"}, sidekiq.Queue("stats")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "FailJob", []any{"dead"}, sidekiq.Queue("stats"), sidekiq.Retry(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "BlockJob", nil, sidekiq.Queue("stats")); err != nil {
		t.Fatal(err)
	}
	b.waitStarted(t, 1, 10*time.Second)
	if _, err := c.PushBulk(ctx, "Waiting", [][]any{{1}, {2}, {3}}, sidekiq.Queue("waiting")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, "Later", nil, sidekiq.In(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantEnqueued := 3
	if sk.Millis() {
		ms := sidekiq.NewClient(db.Client, &sidekiq.ClientConfig{TimeFormat: sidekiq.TimeMillis})
		if _, err := ms.Push(ctx, "Waiting", []any{"ms"}, sidekiq.Queue("waiting_ms")); err != nil {
			t.Fatal(err)
		}
		wantEnqueued++
	}

	out := sk.Ruby(t, db.URL, rubyStats, testsuite.WithEnv("FERRY_PROCESSED=8"))
	var st struct {
		Processed, Failed, Enqueued int
		ScheduledSize               int `json:"scheduled_size"`
		RetrySize                   int `json:"retry_size"`
		DeadSize                    int `json:"dead_size"`
		ProcessesSize               int `json:"processes_size"`
		WorkersSize                 int `json:"workers_size"`
		Queues                      map[string]int
		HistoryProcessed            map[string]int `json:"history_processed"`
		HistoryFailed               map[string]int `json:"history_failed"`
		Latency                     map[string]json.Number
		Today                       string
	}
	mustUnmarshalPlain(t, lastLine(out), &st)
	for name, c := range map[string][2]int{
		"processed":               {st.Processed, 8},
		"failed":                  {st.Failed, 2},
		"enqueued":                {st.Enqueued, wantEnqueued},
		"scheduled_size":          {st.ScheduledSize, 1},
		"retry_size":              {st.RetrySize, 1},
		"dead_size":               {st.DeadSize, 1},
		"processes_size":          {st.ProcessesSize, 1},
		"workers_size":            {st.WorkersSize, 1},
		"queues[waiting]":         {st.Queues["waiting"], 3},
		"history processed today": {st.HistoryProcessed[st.Today], 8},
		"history failed today":    {st.HistoryFailed[st.Today], 2},
	} {
		if c[0] != c[1] {
			t.Errorf("Sidekiq::Stats %s = %d, want %d", name, c[0], c[1])
		}
	}
	queues := []string{"waiting"}
	if sk.Millis() {
		queues = append(queues, "waiting_ms")
	}
	for _, q := range queues {
		l, err := strconv.ParseFloat(st.Latency[q].String(), 64)
		if err != nil || l < 0 || l > 60 {
			t.Errorf("Sidekiq::Queue(%s).latency = %s s, want 0 to 60", q, st.Latency[q])
		}
	}
}
