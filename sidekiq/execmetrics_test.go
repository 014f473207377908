package sidekiq

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestHistogramBucket(t *testing.T) {
	t.Parallel()
	// A run counts in the first bucket whose bound is greater than its milliseconds
	// (Histogram#record_time: break idx if ms < BUCKET_INTERVALS[idx]).
	for _, tc := range []struct {
		ms     int64
		bucket int
	}{
		{0, 0}, {19, 0}, {20, 1}, {29, 1}, {30, 2}, {44, 2}, {45, 3}, {64, 3}, {65, 4},
		{99, 4}, {100, 5}, {280, 7}, {749, 9}, {750, 10}, {1100, 11}, {5749, 14},
		{334999, 24}, {335000, 25}, {1 << 40, 25},
	} {
		if got := histogramBucket(tc.ms); got != tc.bucket {
			t.Errorf("histogramBucket(%d) = %d, want %d", tc.ms, got, tc.bucket)
		}
	}
	if metricsHistogramSize != 26 {
		t.Errorf("%d histogram buckets, Sidekiq has 26", metricsHistogramSize)
	}
}

func TestMetricsKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		at               time.Time
		min7, min8, ten8 string
		hist7, hist8     string
	}{
		{
			at:   time.Date(2026, 12, 1, 9, 5, 7, 0, time.UTC),
			min7: "j|20261201|9:5", min8: "j|261201|9:05", ten8: "j|261201|9:0",
			hist7: "Hard::Job-01-09:5", hist8: "h|Hard::Job-1-9:5",
		},
		{
			at:   time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
			min7: "j|20261231|23:59", min8: "j|261231|23:59", ten8: "j|261231|23:5",
			hist7: "Hard::Job-31-23:59", hist8: "h|Hard::Job-31-23:59",
		},
		{
			at:   time.Date(2030, 1, 9, 0, 0, 0, 0, time.UTC),
			min7: "j|20300109|0:0", min8: "j|300109|0:00", ten8: "j|300109|0:0",
			hist7: "Hard::Job-09-00:0", hist8: "h|Hard::Job-9-0:0",
		},
		{
			at:   time.Date(2027, 2, 14, 8, 43, 0, 0, time.UTC),
			min7: "j|20270214|8:43", min8: "j|270214|8:43", ten8: "j|270214|8:4",
			hist7: "Hard::Job-14-08:43", hist8: "h|Hard::Job-14-8:43",
		},
	} {
		for _, c := range []struct{ name, got, want string }{
			{"7.x minute", minuteBucketKey(tc.at, metrics7), tc.min7},
			{"8.x minute", minuteBucketKey(tc.at, metrics8), tc.min8},
			{"8.x ten minutes", tenMinuteBucketKey(tc.at), tc.ten8},
			{"7.x histogram", histogramKey("Hard::Job", tc.at, metrics7), tc.hist7},
			{"8.x histogram", histogramKey("Hard::Job", tc.at, metrics8), tc.hist8},
		} {
			if c.got != c.want {
				t.Errorf("%v %s key = %q, want %q", tc.at, c.name, c.got, c.want)
			}
		}
	}
}

func TestExecMetricsRecord(t *testing.T) {
	t.Parallel()
	r := newExecMetrics(metrics7|metrics8, 0)
	r.record("HardJob", 5*time.Millisecond+900*time.Microsecond, false) // 5 ms: whole milliseconds
	r.record("HardJob", 25*time.Millisecond, false)
	r.record("HardJob", 7*time.Minute, false)
	r.record("HardJob", 3*time.Second, true) // failed: no time
	r.record("FailOnly", time.Second, true)
	r.record("Zero", 0, false)
	r.record("Negative", -time.Second, false) // a clock oddity counts as 0 ms

	got := r.take()
	want := map[string]classMetrics{
		"HardJob":  {processed: 4, failed: 1, succeeded: 3, ms: 5 + 25 + 420000},
		"FailOnly": {processed: 1, failed: 1},
		"Zero":     {processed: 1, succeeded: 1},
		"Negative": {processed: 1, succeeded: 1},
	}
	hist := map[string]map[int]int64{"HardJob": {0: 1, 1: 1, 25: 1}, "Zero": {0: 1}, "Negative": {0: 1}}
	if len(got) != len(want) {
		t.Fatalf("recorded classes %v, want %d", keysOf(got), len(want))
	}
	for class, w := range want {
		for i, n := range hist[class] {
			w.hist[i] = n
		}
		if c := got[class]; c == nil || *c != w {
			t.Errorf("%s: recorded %+v, want %+v", class, c, w)
		}
	}
	if again := r.take(); again != nil {
		t.Errorf("a second take returned %v; want nothing (a new period)", again)
	}
}

func TestMetricsClass(t *testing.T) {
	t.Parallel()
	if got := metricsClass(&Job{Class: ActiveJobWrapperClass8, Wrapped: "WelcomeJob"}); got != "WelcomeJob" {
		t.Errorf("wrapped job recorded as %q", got)
	}
	if got := metricsClass(&Job{Class: "HardJob"}); got != "HardJob" {
		t.Errorf("plain job recorded as %q", got)
	}
}

func TestExecMetricsBoundsClasses(t *testing.T) {
	t.Parallel()
	r := newExecMetrics(metrics8, 3)
	for i := range 1000 {
		r.record(fmt.Sprintf("Attacker%d", i), time.Millisecond, false)
	}
	for _, bad := range []string{"", "A|p", "A\nB", "A\x00", "\xff\xfe", strings.Repeat("x", 257), "A\u0085"} {
		r.record(bad, time.Millisecond, true)
	}
	got := r.take()
	if len(got) != 4 {
		t.Fatalf("recorded %d classes (%v), want the first 3 and %s", len(got), keysOf(got), metricsOtherClass)
	}
	for _, class := range []string{"Attacker0", "Attacker1", "Attacker2"} {
		if c := got[class]; c == nil || c.processed != 1 {
			t.Errorf("%s: %+v, want 1 processed", class, c)
		}
	}
	if o := got[metricsOtherClass]; o == nil || o.processed != 997+7 || o.failed != 7 || o.succeeded != 997 {
		t.Errorf("%s: %+v, want 1004 processed, 7 failed (the unnamable classes), 997 succeeded", metricsOtherClass, o)
	}
	// A new period takes new names again, and a 256-byte UTF-8 name is fine.
	long := strings.Repeat("é", 128)
	r.record(long, time.Millisecond, false)
	if got := r.take(); got[long] == nil {
		t.Errorf("a 256-byte name was not recorded by name: %v", keysOf(got))
	}
}

func TestExecMetricsConcurrentRecord(t *testing.T) {
	t.Parallel()
	r := newExecMetrics(metrics7, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				r.record(fmt.Sprintf("Job%d", i%4), time.Duration(g)*time.Millisecond, i%10 == 0)
			}
		}()
	}
	wg.Wait()
	var processed, failed int64
	for _, c := range r.take() {
		processed += c.processed
		failed += c.failed
	}
	if processed != 8000 || failed != 800 {
		t.Errorf("processed %d, failed %d; want 8000, 800", processed, failed)
	}
}

// cmdArgs is the arguments of every command queued in p, as strings.
func cmdArgs(p redis.Pipeliner) [][]string {
	var out [][]string
	for _, c := range p.Cmds() {
		var args []string
		for _, a := range c.Args() {
			args = append(args, fmt.Sprint(a))
		}
		out = append(out, args)
	}
	return out
}

func TestExecMetricsFlushCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: commands are only queued
	defer rdb.Close()
	// 9:05:07 in UTC, given in another zone: keys are UTC, as Sidekiq's.
	at := time.Date(2026, 12, 1, 10, 5, 7, 0, time.FixedZone("CET", 3600))

	for _, tc := range []struct {
		name   string
		format metricsFormat
		keys   keyspace
		want   [][]string
	}{
		{
			name: "7.x", format: metrics7, keys: newKeyspace(""),
			want: [][]string{
				{"bitfield", "HardJob-01-09:5", "OVERFLOW", "SAT", "INCRBY", "u16", "#0", "2", "INCRBY", "u16", "#3", "1"},
				{"expire", "HardJob-01-09:5", "28800"},
				{"hincrby", "j|20261201|9:5", "HardJob|ms", "60"},
				{"hincrby", "j|20261201|9:5", "HardJob|p", "4"},
				{"hincrby", "j|20261201|9:5", "HardJob|f", "1"},
				{"expire", "j|20261201|9:5", "28800"},
			},
		},
		{
			name: "8.x", format: metrics8, keys: newKeyspace(""),
			want: [][]string{
				{"bitfield", "h|HardJob-1-9:5", "OVERFLOW", "SAT", "INCRBY", "u16", "#0", "2", "INCRBY", "u16", "#3", "1"},
				{"expire", "h|HardJob-1-9:5", "28800"},
				{"hincrby", "j|261201|9:0", "HardJob|ms", "60"},
				{"hincrby", "j|261201|9:0", "HardJob|p", "4"},
				{"hincrby", "j|261201|9:0", "HardJob|f", "1"},
				{"expire", "j|261201|9:0", "259200"},
				{"hincrby", "j|261201|9:05", "HardJob|ms", "60"},
				{"hincrby", "j|261201|9:05", "HardJob|p", "4"},
				{"hincrby", "j|261201|9:05", "HardJob|f", "1"},
				{"expire", "j|261201|9:05", "28800"},
			},
		},
		{
			name: "7.x in a namespace", format: metrics7, keys: newKeyspace("ns"),
			want: [][]string{
				{"bitfield", "ns:HardJob-01-09:5", "OVERFLOW", "SAT", "INCRBY", "u16", "#0", "2", "INCRBY", "u16", "#3", "1"},
				{"expire", "ns:HardJob-01-09:5", "28800"},
				{"hincrby", "ns:j|20261201|9:5", "HardJob|ms", "60"},
				{"hincrby", "ns:j|20261201|9:5", "HardJob|p", "4"},
				{"hincrby", "ns:j|20261201|9:5", "HardJob|f", "1"},
				{"expire", "ns:j|20261201|9:5", "28800"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newExecMetrics(tc.format, 0)
			r.record("HardJob", 3*time.Millisecond, false)
			r.record("HardJob", 7*time.Millisecond, false)
			r.record("HardJob", 50*time.Millisecond, false)
			r.record("HardJob", time.Second, true)
			p := rdb.Pipeline()
			r.flush(ctx, p, tc.keys, at)
			if got := cmdArgs(p); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("flush queued\n%s\nwant\n%s", showCmds(got), showCmds(tc.want))
			}
			p = rdb.Pipeline()
			r.flush(ctx, p, tc.keys, at)
			if p.Len() != 0 {
				t.Errorf("a flush with nothing recorded queued %s", showCmds(cmdArgs(p)))
			}
		})
	}
}

func TestExecMetricsFlushBothLayouts(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	r := newExecMetrics(metrics7|metrics8, 0)
	r.record("A", time.Millisecond, false)
	r.record("B", time.Millisecond, true) // failures only: no histogram, no ms field
	p := rdb.Pipeline()
	r.flush(context.Background(), p, newKeyspace(""), time.Date(2026, 12, 1, 9, 5, 0, 0, time.UTC))
	keys := map[string]bool{}
	fields := map[string]bool{}
	for _, c := range cmdArgs(p) {
		keys[c[1]] = true
		if c[0] == "hincrby" {
			fields[c[1]+" "+c[2]] = true
		}
	}
	for _, k := range []string{"A-01-09:5", "h|A-1-9:5", "j|20261201|9:5", "j|261201|9:05", "j|261201|9:0"} {
		if !keys[k] {
			t.Errorf("no command on %s; keys %v", k, keys)
		}
	}
	for _, k := range []string{"B-01-09:5", "h|B-1-9:5"} {
		if keys[k] {
			t.Errorf("a histogram %s for a class without successful runs", k)
		}
	}
	for _, f := range []string{"j|20261201|9:5 B|p", "j|20261201|9:5 B|f", "j|261201|9:05 A|ms", "j|261201|9:0 A|p"} {
		if !fields[f] {
			t.Errorf("no HINCRBY of %s", f)
		}
	}
	if fields["j|20261201|9:5 B|ms"] || fields["j|20261201|9:5 A|f"] {
		t.Errorf("a zero field was written: %v", fields)
	}
}

func keysOf(m map[string]*classMetrics) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func showCmds(cmds [][]string) string {
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString("  " + strings.Join(c, " ") + "\n")
	}
	return b.String()
}

func BenchmarkExecMetricsRecord(b *testing.B) {
	r := newExecMetrics(metrics7|metrics8, 0)
	classes := []string{"HardJob", "Mailers::WelcomeJob", "ReportJob", "SyncJob"}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.record(classes[i%len(classes)], time.Duration(i%300)*time.Millisecond, i%50 == 0)
			i++
		}
	})
}
