package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/testutil"
)

// TestTermAtTheEarliestMoment is issue 14, item 8, made deterministic. The fault schedule
// may SIGTERM a worker slot right after it started a new process there (a SIGKILL or
// SIGTERM fault restarts the slot, and the next fault comes 0.5–2 s later; on a loaded
// machine the new process may still be starting). A process that has not yet installed
// its signal handler dies of the signal ("signal: terminated"), which the suite counted
// as an exit it did not cause. Here the SIGTERM comes at the earliest moment: as soon as
// the process has been started. The slot must wait until the worker says its handler is
// in place, then see a clean exit, every time.
func TestTermAtTheEarliestMoment(t *testing.T) {
	t.Parallel()
	_, mr := testutil.NewEmbeddedRedis(t)
	w := newWorkerProc(t, "early", []string{
		envRedisAddr + "=" + mr.Addr(),
		envLedgerURL + "=redis://" + mr.Addr() + "/0",
		envConcurrency + "=1",
		envQueues + "=early",
	})
	const rounds = 3
	for range rounds {
		if err := w.start(); err != nil {
			t.Fatal(err)
		}
		if !w.term(30 * time.Second) {
			t.Fatal("term found no process to stop")
		}
	}
	if u := w.unexpected(); len(u) > 0 {
		t.Fatalf("%d of %d SIGTERMed workers exited in a way the suite counts as a crash:\n%s", len(u), rounds, strings.Join(u, "\n"))
	}
}
