package chaos

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

// goQueue is the queue the Go workers work; rubyQueue the one the Ruby process works.
const (
	goQueue   = "chaos"
	rubyQueue = "ruby"
)

// pushCounts tallies a producer's pushes by outcome.
type pushCounts struct {
	mu      sync.Mutex
	acked   map[string]int // by class (scheduled ones under "<class>@scheduled")
	unknown int            // failed without a reply: recorded as maybe
}

func (c *pushCounts) add(kind string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acked == nil {
		c.acked = map[string]int{}
	}
	if err != nil {
		c.unknown++
		return
	}
	c.acked[kind]++
}

// goProducer pushes a mix of jobs through the fault proxy until ctx ends: immediate and
// scheduled ChaosOK, ChaosSlow, ChaosFail (retry 2), ChaosSteps, worker-locked ChaosWLocked
// over 5 keys and queue-locked ChaosLocked over a small key space, so that identical
// pushes collapse. Every push is recorded in the
// ledger: as maybe before it is sent, as pushed once Redis acknowledged it.
func goProducer(ctx context.Context, rng *rand.Rand, rdb, ledger redis.UniversalClient, every time.Duration, counts *pushCounts) {
	client := sidekiq.NewClient(rdb, nil)
	client.Use(locks.QueueLock(rdb, locks.Inputs("key"), locks.Classes(ClassLocked)))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		class, kind := ClassOK, ClassOK
		args := []any{i}
		opts := []sidekiq.PushOption{sidekiq.Queue(goQueue)}
		switch r := rng.IntN(100); {
		case r < 15:
			kind = ClassOK + "@scheduled"
			opts = append(opts, sidekiq.In(time.Duration(1+rng.IntN(4))*time.Second))
		case r < 22:
			class, kind = ClassSlow, ClassSlow
		case r < 30:
			class, kind = ClassFail, ClassFail
			opts = append(opts, sidekiq.Retry(2))
		case r < 45:
			class, kind = ClassLocked, ClassLocked
			args = []any{map[string]any{"key": "k" + strconv.Itoa(rng.IntN(20)), "n": i}}
		case r < 52:
			class, kind = ClassSteps, ClassSteps
		case r < 57:
			class, kind = ClassWLocked, ClassWLocked
			args = []any{map[string]any{"key": "w" + strconv.Itoa(rng.IntN(5)), "n": i}}
		}
		jid := sidekiq.NewJID()
		opts = append(opts, sidekiq.JID(jid))
		if err := recordAttempt(ctx, ledger, jid, class); err != nil {
			continue // the ledger is down: do not push what could not be accounted for
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := client.Push(pctx, class, args, opts...)
		cancel()
		if err == nil {
			// A held queue lock returns the holder's jid: that job is the one pushed.
			err = recordPushed(ctx, ledger, got, class)
		}
		counts.add(kind, err)
	}
}

// recordAttempt notes jid as maybe pushed, with its class, before the push is sent.
func recordAttempt(ctx context.Context, ledger redis.UniversalClient, jid, class string) error {
	_, err := ledger.TxPipelined(context.WithoutCancel(ctx), func(p redis.Pipeliner) error {
		p.SAdd(ctx, LedgerMaybe, jid)
		p.HSet(ctx, LedgerClass, jid, class)
		return nil
	})
	return err
}

// recordPushed notes jid as acknowledged.
func recordPushed(ctx context.Context, ledger redis.UniversalClient, jid, class string) error {
	_, err := ledger.TxPipelined(context.WithoutCancel(ctx), func(p redis.Pipeliner) error {
		p.SAdd(ctx, LedgerPushed, jid)
		p.HSet(ctx, LedgerClass, jid, class)
		return nil
	})
	return err
}
