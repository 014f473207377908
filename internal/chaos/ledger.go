package chaos

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The ledger is the suite's bookkeeping. It lives in a Redis that no fault touches (a
// database of the machine's Redis), apart from the private Redis the jobs live in, so
// what it says survives every fault. Producers and handlers, in Go and in Ruby, write it.
const (
	// LedgerPushed is the set of jids whose push was acknowledged by Redis.
	LedgerPushed = "chaos:pushed"
	// LedgerMaybe is the set of jids a push was attempted for, written before the push: a
	// push that failed without a reply may or may not have reached Redis.
	LedgerMaybe = "chaos:maybe"
	// LedgerClass maps a jid to its job class, written with LedgerMaybe.
	LedgerClass = "chaos:class"
	// LedgerRuns maps a jid to the number of completed runs of its handler.
	LedgerRuns = "chaos:runs"
	// LedgerFails maps a jid to the number of runs of ChaosFail (which always fails).
	LedgerFails = "chaos:fails"
	// LedgerSteps maps a jid to the number of times ChaosSteps' durable step "a" ran.
	LedgerSteps = "chaos:steps"
	// LedgerInterrupted counts ChaosSlow runs cut short by a shutdown (SIGTERM mid-job).
	LedgerInterrupted = "chaos:interrupted"
	// LedgerOverlaps counts runs that found another run of the same worker-locked key
	// still going.
	LedgerOverlaps = "chaos:overlaps"
	// LedgerRunningPrefix starts the key a worker-locked run holds while it runs.
	LedgerRunningPrefix = "chaos:running:"
)

// recordRun counts one completed run of jid.
func recordRun(ctx context.Context, ledger redis.UniversalClient, jid string) error {
	return ledger.HIncrBy(ctx, LedgerRuns, jid, 1).Err()
}
