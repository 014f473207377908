package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// metric is one column of the tables: a figure computed from a sample.
type metric struct {
	head   string
	value  func(sample) float64
	format string
}

// metrics are the columns `run` reports for every drain. BENCHMARKS.md explains each.
var metrics = []metric{
	{"jobs/s", sample.rate, "%.0f"},
	{"Redis µs/job", sample.redisPerJob, "%.2f"},
	{"Redis CPU %", func(s sample) float64 { return 100 * s.redisUtil() }, "%.0f"},
	{"cmds/job", sample.cmdsPerJob, "%.2f"},
	{"scripts/job", sample.scriptsPerJob, "%.3f"},
	{"worker µs/job", sample.cpuPerJob, "%.1f"},
	{"jobs/CPU-s", sample.jobsPerCPUSecond, "%.0f"},
	{"peak RSS MB", func(s sample) float64 { return float64(s.PeakRSS) / 1024 }, "%.1f"},
}

// spread is the median, smallest and largest of a figure over rounds.
type spread struct{ Median, Min, Max float64 }

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// format prints "median (min–max)", or the median alone when the range is nothing at f's
// precision.
func (s spread) format(f string) string {
	med, lo, hi := fmtNum(f, s.Median), fmtNum(f, s.Min), fmtNum(f, s.Max)
	if lo == hi {
		return med
	}
	return med + " (" + lo + "–" + hi + ")"
}

// fmtNum formats x with f, grouping thousands of whole numbers with commas.
func fmtNum(f string, x float64) string {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return "–"
	}
	s := fmt.Sprintf(f, x)
	if f != "%.0f" || math.Abs(x) < 10000 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// workloadResult is one workload's drains: samples[w][r] is worker w in round r.
type workloadResult struct {
	title   string
	names   []string
	specs   []workerSpec
	samples [][]sample
}

func (r *workloadResult) values(w int, m metric) []float64 {
	out := make([]float64, len(r.samples[w]))
	for i, s := range r.samples[w] {
		out[i] = m.value(s)
	}
	return out
}

// index finds a worker by kind, concurrency and process count; -1 when absent.
func (r *workloadResult) index(kind workerKind, conc, procs int) int {
	for i, s := range r.specs {
		if s.kind == kind && s.conc == conc && s.processes() == max(procs, 1) {
			return i
		}
	}
	return -1
}

// printRound prints one drain as it finishes.
func printRound(out io.Writer, round int, name string, s sample) {
	cols := []string{fmt.Sprintf("round %d", round), name, fmt.Sprintf("%.2f s", s.Elapsed.Seconds())}
	for _, m := range metrics {
		cols = append(cols, m.head+" "+fmtNum(m.format, m.value(s)))
	}
	if s.Ran != int64(s.Jobs) {
		cols = append(cols, fmt.Sprintf("(%d runs of %d jobs)", s.Ran, s.Jobs))
	}
	fmt.Fprintln(out, strings.Join(cols, "  "))
}

// printSummary prints the table of medians (min–max) over rounds.
func printSummary(out io.Writer, r *workloadResult, rounds int, markdown bool) {
	head := []string{"worker", "seconds"}
	for _, m := range metrics {
		head = append(head, m.head)
	}
	rows := [][]string{head}
	for w, name := range r.names {
		secs := make([]float64, len(r.samples[w]))
		for i, s := range r.samples[w] {
			secs[i] = s.Elapsed.Seconds()
		}
		row := []string{name, spreadOf(secs).format("%.2f")}
		for _, m := range metrics {
			row = append(row, spreadOf(r.values(w, m)).format(m.format))
		}
		rows = append(rows, row)
	}
	if rounds > 1 {
		fmt.Fprintf(out, "\nmedian (min–max) over %d rounds:\n", rounds)
	} else {
		fmt.Fprintln(out)
	}
	printTable(out, rows, markdown)
}

// printTable prints rows (the first is the header) aligned, or as a Markdown table.
func printTable(out io.Writer, rows [][]string, markdown bool) {
	if markdown {
		for i, row := range rows {
			fmt.Fprintf(out, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(out, "|%s\n", strings.Repeat("---|", len(row)))
			}
		}
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// ratio compares worker a with worker b on m: the ratio of the medians and the smallest
// and largest ratio within a round (a and b ran back to back). inverse compares b/a
// (for costs, where less is better).
func (r *workloadResult) ratio(a, b int, m metric, inverse bool) (med float64, per spread) {
	va, vb := r.values(a, m), r.values(b, m)
	if inverse {
		va, vb = vb, va
	}
	per1 := make([]float64, 0, len(va))
	for i := range min(len(va), len(vb)) {
		if vb[i] > 0 {
			per1 = append(per1, va[i]/vb[i])
		}
	}
	ma, mb := spreadOf(va).Median, spreadOf(vb).Median
	if mb == 0 {
		return math.Inf(1), spreadOf(per1)
	}
	return ma / mb, spreadOf(per1)
}

// printRatio prints, for workers a and b, a's jobs/s over b's, then how many times less
// (or more) Redis CPU and worker CPU a spends per job than b: the ratio of the medians,
// and with rounds the smallest and largest ratio within a round (a and b ran back to back).
func printRatio(out io.Writer, r *workloadResult, label string, a, b int) {
	if a < 0 || b < 0 {
		return
	}
	rounds := len(r.samples[a]) > 1
	med, per := r.ratio(a, b, metrics[0], false)
	parts := []string{fmt.Sprintf("%.1fx jobs/s", med)}
	if rounds {
		parts[0] += fmt.Sprintf(" (rounds %.1f–%.1fx)", per.Min, per.Max)
	}
	for _, c := range []struct {
		m    metric
		what string
	}{{metrics[1], "Redis CPU per job"}, {metrics[5], "worker CPU per job"}} {
		med, per := r.ratio(a, b, c.m, true) // b's cost over a's
		p := c.what + " " + lessOrMore(med)
		if rounds {
			p += fmt.Sprintf(" (rounds %s)", lessOrMoreRange(per))
		}
		parts = append(parts, p)
	}
	fmt.Fprintf(out, "%s: %s\n", label, strings.Join(parts, "; "))
}

// lessOrMore says x (the other's cost over this one's) as "3.1x less" or, under 1, as
// "1.3x more".
func lessOrMore(x float64) string {
	if x >= 1 || x <= 0 {
		return fmt.Sprintf("%.1fx less", x)
	}
	return fmt.Sprintf("%.1fx more", 1/x)
}

func lessOrMoreRange(s spread) string {
	switch {
	case s.Min >= 1:
		return fmt.Sprintf("%.1f–%.1fx less", s.Min, s.Max)
	case s.Max < 1 && s.Min > 0:
		return fmt.Sprintf("%.1f–%.1fx more", 1/s.Max, 1/s.Min)
	}
	return fmt.Sprintf("%s to %s", lessOrMore(s.Min), lessOrMore(s.Max))
}

// printTopCommands lists, for each worker, its k most called and k most costly commands
// over all rounds, per job.
func printTopCommands(out io.Writer, r *workloadResult, k int) {
	if k <= 0 {
		return
	}
	fmt.Fprintln(out, "\nRedis commands per job, all rounds (commands run inside scripts count too):")
	for w, name := range r.names {
		var cost redisCost
		jobs := 0
		for _, s := range r.samples[w] {
			cost = cost.add(s.Redis)
			jobs += s.Jobs
		}
		var usecAll int64
		for _, c := range cost.Commands {
			usecAll += c.Usec
		}
		var byCalls, byUsec []string
		for _, c := range cost.top(k, false) {
			byCalls = append(byCalls, fmt.Sprintf("%s %.3f", c.Name, float64(c.Calls)/float64(max(jobs, 1))))
		}
		for _, c := range cost.top(k, true) {
			byUsec = append(byUsec, fmt.Sprintf("%s %.2f µs (%.0f%%)", c.Name,
				float64(c.Usec)/float64(max(jobs, 1)), 100*float64(c.Usec)/float64(max(usecAll, 1))))
		}
		fmt.Fprintf(out, "  %s\n    by calls: %s\n    by time:  %s\n", name, strings.Join(byCalls, ", "), strings.Join(byUsec, ", "))
	}
}
