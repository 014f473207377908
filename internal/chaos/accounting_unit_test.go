package chaos

import (
	"strings"
	"testing"
)

// The accounting must catch what the suite exists to catch: these cases feed it a ledger
// and a snapshot by hand.

func emptyState() (*ledgerState, *snapshot) {
	l := &ledgerState{pushed: map[string]bool{}, maybe: map[string]bool{}, class: map[string]string{},
		runs: map[string]int{}, fails: map[string]int{}, steps: map[string]int{}, bad: map[string]string{}, badRaw: map[string]string{}}
	s := &snapshot{queued: map[string]bool{}, scheduled: map[string]bool{}, inprogress: map[string]bool{},
		retry: map[string]member{}, dead: map[string]member{}, rawQueued: map[string]bool{},
		rawDead: map[string]bool{}, queueLocks: map[string]string{}}
	return l, s
}

func push(l *ledgerState, jid, class string, acked bool) {
	l.maybe[jid] = true
	l.class[jid] = class
	if acked {
		l.pushed[jid] = true
	}
}

func TestAccountOutcomes(t *testing.T) {
	l, s := emptyState()
	push(l, "done", ClassOK, true)
	l.runs["done"] = 3
	push(l, "queued", ClassOK, true)
	s.queued["queued"] = true
	push(l, "failed", ClassFail, true)
	s.dead["failed"] = member{JID: "failed", ErrorClass: "*errors.errorString", ErrorMessage: "ChaosFail fails on purpose"}
	push(l, "retrying", ClassFail, true)
	s.retry["retrying"] = member{JID: "retrying", ErrorClass: "*errors.errorString"}
	push(l, "lost", ClassOK, true)
	push(l, "maybe-absent", ClassOK, false)
	push(l, "maybe-ran", ClassOK, false)
	l.runs["maybe-ran"] = 1
	l.runs["phantom"] = 1
	push(l, "steps", ClassSteps, true)
	l.runs["steps"] = 1
	l.steps["steps"] = 3

	a := account(l, s)
	if a.stepReruns != 2 {
		t.Errorf("step reruns = %d, want 2", a.stepReruns)
	}
	want := map[string]int{outDone: 3, outWaiting: 1, outDead: 1, outRetry: 1, outLost: 1}
	for k, n := range want {
		if a.outcomes[k] != n {
			t.Errorf("outcomes[%s] = %d, want %d (all: %v)", k, a.outcomes[k], n, a.outcomes)
		}
	}
	if a.maybeAbsent != 1 || a.maybeArrived != 1 {
		t.Errorf("maybe absent/arrived = %d/%d, want 1/1", a.maybeAbsent, a.maybeArrived)
	}
	if a.duplicates != 2 || a.dupJobs != 1 {
		t.Errorf("duplicates = %d over %d jobs, want 2 over 1", a.duplicates, a.dupJobs)
	}
	joined := strings.Join(a.problems, "\n")
	for _, w := range []string{"jid lost", "phantom"} {
		if !strings.Contains(joined, w) {
			t.Errorf("problems do not mention %q:\n%s", w, joined)
		}
	}
}

func TestAccountMalformedAndLocks(t *testing.T) {
	l, s := emptyState()
	for jid, kind := range map[string]string{"j": badJSON, "a": badArgs, "c": badClass, "i": badInputs, "ran": badArgs} {
		push(l, jid, "", true)
		l.bad[jid] = kind
	}
	l.badRaw["j"] = `{"class":"ChaosOK","args":[1,`
	s.rawDead[l.badRaw["j"]] = true
	s.dead["a"] = member{JID: "a", ErrorClass: "Ferry::InvalidPayload", ErrorMessage: `"args" is not an array`}
	s.dead["c"] = member{JID: "c", ErrorClass: "Ferry::NoHandler", ErrorMessage: "no handler for ChaosNoSuchClass"}
	s.dead["i"] = member{JID: "i", ErrorClass: "Ferry::Discard", ErrorMessage: "something else"}
	l.runs["ran"] = 1
	s.queueLocks["ferry:lock:queue:x"] = "gone"
	s.workerLock = []string{"ferry:lock:worker:y"}
	l.overlaps = 2

	a := account(l, s)
	if a.malformed[badJSON] != 1 || a.malformed[badArgs] != 1 || a.malformed[badClass] != 1 || a.malformed[badInputs] != 0 {
		t.Errorf("malformed handled = %v", a.malformed)
	}
	if a.outcomes[outWrong] != 2 {
		t.Errorf("misfiled = %d, want 2 (wrong error, and a malformed job that ran): %v", a.outcomes[outWrong], a.outcomes)
	}
	joined := strings.Join(a.problems, "\n")
	for _, w := range []string{"queue lock ferry:lock:queue:x held by gone", "worker lock keys left", "2 overlapping runs"} {
		if !strings.Contains(joined, w) {
			t.Errorf("problems do not mention %q:\n%s", w, joined)
		}
	}
}
