package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// Outcomes of a jid in the accounting.
const (
	outDone    = "done"     // its handler completed at least once
	outRetry   = "retry"    // in the retry set, with an error
	outDead    = "dead"     // in the dead set, with an error
	outWaiting = "waiting"  // still queued, scheduled or in progress
	outLost    = "LOST"     // none of the above: a bug
	outWrong   = "MISFILED" // somewhere, but not where its kind belongs (a malformed job run, say)
)

// accounting is the end-of-run verdict on every jid the ledger knows.
type accounting struct {
	outcomes     map[string]int // pushed jids by outcome
	maybeArrived int            // unacknowledged pushes that reached Redis (and are accounted)
	maybeAbsent  int            // unacknowledged pushes that never did
	malformed    map[string]int // malformed payloads handled as their kind requires, by kind
	duplicates   int            // runs beyond the first, summed over jids
	dupJobs      int            // jids that ran more than once
	stepReruns   int            // runs of a durable step beyond the first, summed over jids
	phantoms     []string       // jids that ran but were never pushed
	problems     []string
}

// account classifies every jid of the ledger against the snapshot of the private Redis.
func account(l *ledgerState, s *snapshot) *accounting {
	a := &accounting{outcomes: map[string]int{}, malformed: map[string]int{}}
	jids := make([]string, 0, len(l.maybe))
	for jid := range l.maybe {
		jids = append(jids, jid)
	}
	sort.Strings(jids)
	for _, jid := range jids {
		var out string
		if kind, ok := l.bad[jid]; ok {
			out = a.classifyMalformed(jid, kind, l, s)
		} else {
			out = a.classify(jid, l.class[jid], l, s)
		}
		if !l.pushed[jid] {
			// The push got no reply: it may or may not have reached Redis. Absent is fine;
			// present must be accounted like any other.
			if out == outLost {
				a.maybeAbsent++
				continue
			}
			a.maybeArrived++
		}
		a.outcomes[out]++
		if out == outLost || out == outWrong {
			a.problems = append(a.problems, fmt.Sprintf("jid %s (%s%s): %s", jid, l.class[jid], l.bad[jid], out))
		}
	}
	for jid, n := range l.runs {
		if !l.maybe[jid] {
			a.phantoms = append(a.phantoms, jid)
		}
		if n > 1 {
			a.duplicates += n - 1
			a.dupJobs++
		}
	}
	for jid, n := range l.steps {
		if n > 1 {
			a.stepReruns += n - 1
		}
		if l.runs[jid] > 0 && n == 0 {
			a.problems = append(a.problems, fmt.Sprintf("ChaosSteps %s completed without its step", jid))
		}
	}
	if len(a.phantoms) > 0 {
		a.problems = append(a.problems, fmt.Sprintf("%d phantom jids ran that no producer pushed: %v", len(a.phantoms), head(a.phantoms)))
	}
	for key, holder := range s.queueLocks {
		if !s.queued[holder] && !s.scheduled[holder] {
			a.problems = append(a.problems, fmt.Sprintf("queue lock %s held by %s, which is not waiting", key, holder))
		}
	}
	if len(s.workerLock) > 0 {
		a.problems = append(a.problems, fmt.Sprintf("worker lock keys left: %v", head(s.workerLock)))
	}
	if l.overlaps > 0 {
		a.problems = append(a.problems, fmt.Sprintf("%d overlapping runs of a worker-locked key", l.overlaps))
	}
	return a
}

// classify places a well-formed job.
func (a *accounting) classify(jid, class string, l *ledgerState, s *snapshot) string {
	if class == ClassFail {
		if l.runs[jid] > 0 {
			return outWrong // ChaosFail never completes
		}
		if m, ok := s.dead[jid]; ok {
			if !strings.Contains(m.ErrorMessage, "fails on purpose") {
				return outWrong
			}
			return outDead
		}
	}
	switch {
	case l.runs[jid] > 0:
		return outDone
	case s.waiting(jid):
		return outWaiting
	}
	if m, ok := s.retry[jid]; ok && m.ErrorClass != "" {
		return outRetry
	}
	if m, ok := s.dead[jid]; ok && m.ErrorClass != "" {
		return outDead
	}
	return outLost
}

// classifyMalformed places a malformed payload: each kind has one right place.
func (a *accounting) classifyMalformed(jid, kind string, l *ledgerState, s *snapshot) string {
	if kind == badJSON {
		raw := l.badRaw[jid]
		switch {
		case s.rawDead[raw]:
			a.malformed[kind]++
			return outDead
		case s.rawQueued[raw]:
			return outWaiting
		}
		return outLost
	}
	if kind == hugePayload {
		out := a.classify(jid, ClassOK, l, s)
		if out == outDone {
			a.malformed[kind]++
		}
		return out
	}
	if l.runs[jid] > 0 {
		return outWrong
	}
	if s.waiting(jid) {
		return outWaiting
	}
	if _, ok := s.retry[jid]; ok && kind == badClass {
		return outRetry
	}
	m, ok := s.dead[jid]
	if !ok {
		if _, ok := s.retry[jid]; ok {
			return outWrong
		}
		return outLost
	}
	want := map[string][2]string{
		badArgs:   {"Ferry::InvalidPayload", "args"},
		badClass:  {"Ferry::NoHandler", "ChaosNoSuchClass"},
		badInputs: {"", "named inputs"},
	}[kind]
	if (want[0] != "" && m.ErrorClass != want[0]) || !strings.Contains(m.ErrorMessage, want[1]) {
		a.problems = append(a.problems, fmt.Sprintf("malformed %s %s: dead with %s: %q, want %s mentioning %q", kind, jid, m.ErrorClass, m.ErrorMessage, want[0], want[1]))
		return outWrong
	}
	a.malformed[kind]++
	return outDead
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
