package chaos

import (
	"fmt"
	"sort"
	"time"
)

// chaosReport renders the results table.
type chaosReport struct {
	seed             uint64
	faultTime, total time.Duration
	faults           *faultLog
	goPushes         *pushCounts
	badPushes        *pushCounts
	ruby             string
	acc              *accounting
	dupBound         int
	interrupted      int
	pushed           int // acknowledged jids, all producers
	overlaps         int // runs of a worker-locked key that found another running
	stopErrs         int // SIGTERMed workers whose shutdown reported an error (exit 3)
	stranded         int // jobs stranded in a live worker's in-progress list at the drain
	aofRepairs       int // Redis restarts that found the append-only file torn by the kill
}

func (r *chaosReport) markdown() string {
	var b []byte
	row := func(k string, v any) { b = fmt.Appendf(b, "| %s | %v |\n", k, v) }
	b = append(b, "| chaos run | |\n|---|---|\n"...)
	row("seed", r.seed)
	row("fault phase / total", fmt.Sprintf("%v / %v", r.faultTime, r.total.Round(time.Second)))
	row("jobs pushed (acknowledged jids, Go + Ruby + malformed)", r.pushed)
	for _, k := range sortedKeys(r.goPushes.acked) {
		row("Go pushes acked: "+k, r.goPushes.acked[k])
	}
	row("Go pushes without reply (maybe)", r.goPushes.unknown)
	row("Ruby producer", r.ruby)
	for _, k := range badKinds {
		row("malformed fed: "+k, fmt.Sprintf("%d (handled as required: %d)", r.badPushes.acked[k], r.acc.malformed[k]))
	}
	for _, k := range faultKinds {
		row("fault: "+k, r.faults.count(k))
	}
	row("Redis restarts that repaired a torn append-only file", r.aofRepairs)
	for _, k := range []string{outDone, outRetry, outDead, outWaiting, outLost, outWrong} {
		row("jobs "+k, r.acc.outcomes[k])
	}
	row("unacknowledged pushes: arrived / never arrived", fmt.Sprintf("%d / %d", r.acc.maybeArrived, r.acc.maybeAbsent))
	row("duplicate runs (jobs) / bound", fmt.Sprintf("%d (%d) / %d", r.acc.duplicates, r.acc.dupJobs, r.dupBound))
	row("durable step re-runs / bound", fmt.Sprintf("%d / %d", r.acc.stepReruns, r.dupBound))
	row("ChaosSlow runs interrupted by SIGTERM and requeued", r.interrupted)
	row("worker-lock overlaps (must be 0)", r.overlaps)
	row("SIGTERMed workers whose shutdown reported an error (exit 3)", r.stopErrs)
	row("jobs stranded in a live worker's in-progress list at the drain (must be 0)", r.stranded)
	row("problems", len(r.acc.problems))
	return string(b)
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
