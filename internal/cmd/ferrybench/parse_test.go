package main

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const sampleInfo = `# Server
redis_version:7.0.15
process_id:2227
tcp_port:6379

# Clients
connected_clients:7

# CPU
used_cpu_sys:407.730756
used_cpu_user:490.401697
used_cpu_sys_children:0.000000
used_cpu_user_children:0.000000
used_cpu_sys_main_thread:406.239179
used_cpu_user_main_thread:489.528961

# Commandstats
cmdstat_evalsha:calls=61731,usec=285614116,usec_per_call=4626.75,rejected_calls=0,failed_calls=50
cmdstat_config|resetstat:calls=1,usec=457,usec_per_call=457.00,rejected_calls=0,failed_calls=0
cmdstat_hdel:calls=100000,usec=150000,usec_per_call=1.50
`

func TestParseInfo(t *testing.T) {
	t.Parallel()
	s, err := parseInfo(strings.ReplaceAll(sampleInfo, "\n", "\r\n")) // Redis ends lines with CRLF
	if err != nil {
		t.Fatal(err)
	}
	wantCPU := time.Duration((407.730756 + 490.401697) * float64(time.Second))
	if d := s.CPU - wantCPU; d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("CPU = %v, want %v (user + sys, not the children's nor the main thread's)", s.CPU, wantCPU)
	}
	if s.PID != 2227 || s.Clients != 7 || s.Version != "7.0.15" {
		t.Errorf("pid %d clients %d version %q", s.PID, s.Clients, s.Version)
	}
	want := map[string]cmdStat{
		"evalsha":          {Calls: 61731, Usec: 285614116},
		"config|resetstat": {Calls: 1, Usec: 457},
		"hdel":             {Calls: 100000, Usec: 150000}, // an older server's line, without rejected_calls
	}
	if len(s.Commands) != len(want) {
		t.Errorf("commands = %v, want %v", s.Commands, want)
	}
	for k, v := range want {
		if s.Commands[k] != v {
			t.Errorf("%s = %+v, want %+v", k, s.Commands[k], v)
		}
	}
}

func TestParseInfoErrors(t *testing.T) {
	t.Parallel()
	for name, txt := range map[string]string{
		"no CPU":           "# Server\nredis_version:7.0.15\n",
		"only user CPU":    "used_cpu_user:1.5\n",
		"bad CPU":          "used_cpu_user:x\nused_cpu_sys:1\n",
		"cmdstat no usec":  "used_cpu_user:1\nused_cpu_sys:1\ncmdstat_get:calls=3\n",
		"cmdstat bad call": "used_cpu_user:1\nused_cpu_sys:1\ncmdstat_get:calls=three,usec=4\n",
	} {
		if _, err := parseInfo(txt); err == nil {
			t.Errorf("%s: parseInfo(%q) = nil error", name, txt)
		}
	}
}

func TestRedisDelta(t *testing.T) {
	t.Parallel()
	at := time.Unix(1000, 0)
	a := redisSnapshot{At: at, CPU: 10 * time.Second, Commands: map[string]cmdStat{
		"info": {Calls: 5, Usec: 500}, "llen": {Calls: 10, Usec: 10}, "hdel": {Calls: 1, Usec: 1},
	}}
	b := redisSnapshot{At: at.Add(2 * time.Second), CPU: 11 * time.Second, Commands: map[string]cmdStat{
		"info": {Calls: 7, Usec: 700}, "llen": {Calls: 110, Usec: 210}, "hdel": {Calls: 1001, Usec: 1501},
		"evalsha": {Calls: 10, Usec: 400},
	}}
	d := redisDelta(a, b, map[string]int64{"info": 2, "llen": 50})
	if d.Wall != 2*time.Second || d.CPU != time.Second {
		t.Errorf("wall %v cpu %v", d.Wall, d.CPU)
	}
	want := map[string]cmdStat{
		"llen":    {Calls: 50, Usec: 100}, // 100 calls for 200 µs, ours 50 at the average cost
		"hdel":    {Calls: 1000, Usec: 1500},
		"evalsha": {Calls: 10, Usec: 400},
	} // info: all ours, dropped
	if len(d.Commands) != len(want) {
		t.Errorf("commands = %v, want %v", d.Commands, want)
	}
	for k, v := range want {
		if d.Commands[k] != v {
			t.Errorf("%s = %+v, want %+v", k, d.Commands[k], v)
		}
	}
	all, scripts := d.calls()
	if all != 1060 || scripts != 10 {
		t.Errorf("calls() = %d, %d; want 1060, 10", all, scripts)
	}
	var names []string
	for _, c := range d.top(2, false) {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"hdel", "llen"}) {
		t.Errorf("top by calls = %v", names)
	}
	names = names[:0]
	for _, c := range d.top(5, true) {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"hdel", "evalsha", "llen"}) {
		t.Errorf("top by usec = %v", names)
	}
	sum := d.add(d)
	if sum.CPU != 2*time.Second || sum.Commands["hdel"].Calls != 2000 || d.Commands["hdel"].Calls != 1000 {
		t.Errorf("add: %+v (and the operand after: %+v)", sum, d.Commands["hdel"])
	}
}

func TestQuiet(t *testing.T) {
	t.Parallel()
	a := redisSnapshot{Commands: map[string]cmdStat{"info": {Calls: 3}, "hdel": {Calls: 9}}}
	if !quiet(a, redisSnapshot{Commands: map[string]cmdStat{"info": {Calls: 4}, "hdel": {Calls: 9}}}) {
		t.Error("one more INFO (ours) is quiet")
	}
	if quiet(a, redisSnapshot{Commands: map[string]cmdStat{"info": {Calls: 4}, "hdel": {Calls: 10}}}) {
		t.Error("one more HDEL is not quiet")
	}
	if quiet(a, redisSnapshot{Commands: map[string]cmdStat{"info": {Calls: 4}, "hdel": {Calls: 9}, "get": {Calls: 1}}}) {
		t.Error("a new command is not quiet")
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	// Fields 14 and 15 are utime 250 and stime 37 ticks; the name holds spaces and ')'.
	line := "4242 (ruby: sidekiq (x) 6) S 1 4242 4242 0 -1 4194560 5000 0 0 0 250 37 0 0 20 0 12 0 100 200000000 15000\n"
	c, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != 2500*time.Millisecond || c.Sys != 370*time.Millisecond || c.total() != 2870*time.Millisecond {
		t.Errorf("got %+v", c)
	}
	for _, bad := range []string{"4242 ruby S 1", "4242 (ruby) S 1 2 3", "4242 (ruby) S 1 4242 4242 0 -1 4194560 5000 0 0 0 x 37 0 0"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) = nil error", bad)
		}
	}
}

func TestProcCPUOfThisProcess(t *testing.T) {
	t.Parallel()
	c, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self, rss := selfCPU()
	// /proc counts whole ticks of the same accounting getrusage reads later.
	if c.total() > self.total()+clockTick || rss <= 0 {
		t.Errorf("/proc says %v, getrusage (read after) %v, maxrss %d kB", c.total(), self.total(), rss)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("procCPU(-1) = nil error")
	}
}

func TestParseChildLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		ok   bool
		err  bool
		want childMsg
	}{
		{"start 1700000000000000000 1500 250", true, false, childMsg{Kind: "start", At: time.Unix(0, 1700000000000000000), CPU: cpuTime{1500 * time.Microsecond, 250 * time.Microsecond}, HasCPU: true}},
		{"start 1700000000000000000", true, false, childMsg{Kind: "start", At: time.Unix(0, 1700000000000000000)}},
		{"count 42 1700000000000000001", true, false, childMsg{Kind: "count", Count: 42, At: time.Unix(0, 1700000000000000001)}},
		{"report 42 1700000000000000001", true, false, childMsg{Kind: "report", Count: 42, At: time.Unix(0, 1700000000000000001)}},
		{"report 42 1700000000000000001 9 8 20480", true, false, childMsg{Kind: "report", Count: 42, At: time.Unix(0, 1700000000000000001), CPU: cpuTime{9 * time.Microsecond, 8 * time.Microsecond}, HasCPU: true, MaxRSS: 20480}},
		{"W, [2026-12-01] WARN -- : something Ruby logged", false, false, childMsg{}},
		{"", false, false, childMsg{}},
		{"count 42", false, true, childMsg{}},
		{"start 1 2", false, true, childMsg{}},
		{"report 1 2 3", false, true, childMsg{}},
		{"count x 1", false, true, childMsg{}},
	} {
		m, ok, err := parseChildLine(tc.line)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("%q: ok %v err %v", tc.line, ok, err)
			continue
		}
		if ok && m != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.line, m, tc.want)
		}
	}
}

// TestProgressSpeaksTheProtocol: what a Go worker writes, ferrybench reads back.
func TestProgressSpeaksTheProtocol(t *testing.T) {
	t.Parallel()
	var out tailBuffer
	p := newProgress(&out)
	before := time.Now()
	for range 3 {
		p.started()
		p.finished()
	}
	stopTick := p.tick(time.Millisecond)
	r, w := io.Pipe()
	stopped := make(chan struct{})
	go p.serveStdin(r, func() { close(stopped) })
	io.WriteString(w, "report\n")
	w.Close()
	<-stopped
	stopTick()
	var starts, reports int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		m, ok, err := parseChildLine(line)
		if !ok || err != nil {
			t.Fatalf("%q: ok %v err %v", line, ok, err)
		}
		switch m.Kind {
		case "start":
			starts++
			if !m.HasCPU || m.At.Before(before.Add(-time.Second)) {
				t.Errorf("start line %+v", m)
			}
		case "report":
			reports++
			if m.Count != 3 || !m.HasCPU || m.MaxRSS <= 0 || m.At.Before(before) {
				t.Errorf("report line %+v", m)
			}
		case "count":
			if m.Count != 3 {
				t.Errorf("count line %+v", m)
			}
		}
	}
	if starts != 1 || reports != 1 {
		t.Errorf("%d start lines and %d reports, want 1 each:\n%s", starts, reports, out.String())
	}
}

func TestSpreadAndFormat(t *testing.T) {
	t.Parallel()
	if s := spreadOf([]float64{3, 1, 2}); s != (spread{2, 1, 3}) {
		t.Errorf("odd: %+v", s)
	}
	if s := spreadOf([]float64{4, 1, 2, 3}); s != (spread{2.5, 1, 4}) {
		t.Errorf("even: %+v", s)
	}
	for _, tc := range []struct {
		f    string
		x    float64
		want string
	}{
		{"%.0f", 1234567, "1,234,567"},
		{"%.0f", 9999, "9999"},
		{"%.0f", 100000, "100,000"},
		{"%.2f", 12345.678, "12345.68"},
	} {
		if got := fmtNum(tc.f, tc.x); got != tc.want {
			t.Errorf("fmtNum(%q, %v) = %q, want %q", tc.f, tc.x, got, tc.want)
		}
	}
	if got := (spread{2, 1, 3}).format("%.1f"); got != "2.0 (1.0–3.0)" {
		t.Errorf("format = %q", got)
	}
}

func TestIOSleeps(t *testing.T) {
	t.Parallel()
	a, b := ioSleeps(10000, 20), ioSleeps(10000, 20)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave different waits")
	}
	if slices.Equal(a, ioSleeps(10000, 21)) {
		t.Error("another seed gave the same waits")
	}
	sum := 0
	seen := map[int]bool{}
	for _, ms := range a {
		if ms < 5 || ms > 20 {
			t.Fatalf("wait %d ms outside 5..20", ms)
		}
		sum += ms
		seen[ms] = true
	}
	if len(seen) != 16 {
		t.Errorf("%d distinct waits, want all 16 of 5..20", len(seen))
	}
	if mean := float64(sum) / float64(len(a)); mean < 12 || mean > 13 {
		t.Errorf("mean wait %.2f ms, want about 12.5", mean)
	}
}

func TestParseWorkloads(t *testing.T) {
	t.Parallel()
	got, err := parseWorkloads("rss, noop,rss")
	if err != nil || !slices.Equal(got, []string{"noop", "rss"}) {
		t.Errorf("parseWorkloads = %v, %v", got, err)
	}
	got, err = parseWorkloads("issue20")
	if err != nil || !slices.Equal(got, allWorkloads) {
		t.Errorf("issue20 = %v, %v", got, err)
	}
	if _, err := parseWorkloads("noop,bogus"); err == nil {
		t.Error("an unknown workload was accepted")
	}
	if n, err := parseInts("10, 100,1000"); err != nil || !slices.Equal(n, []int{10, 100, 1000}) {
		t.Errorf("parseInts = %v, %v", n, err)
	}
	if _, err := parseInts("10,0"); err == nil {
		t.Error("concurrency 0 was accepted")
	}
}

func TestPrintTableMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	printTable(&b, [][]string{{"worker", "jobs/s"}, {"Ferry", "100,000"}}, true)
	want := "| worker | jobs/s |\n|---|---|\n| Ferry | 100,000 |\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestLessOrMore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got, want string
	}{
		{lessOrMore(7.8), "7.8x less"},
		{lessOrMore(0.8), "1.2x more"},
		{lessOrMoreRange(spread{Min: 6.8, Max: 8.2}), "6.8–8.2x less"},
		{lessOrMoreRange(spread{Min: 0.5, Max: 0.8}), "1.2–2.0x more"},
		{lessOrMoreRange(spread{Min: 0.8, Max: 1.5}), "1.2x more to 1.5x less"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
