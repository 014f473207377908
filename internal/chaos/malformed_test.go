package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/sidekiq"
)

// Malformed payload kinds, and what must become of each.
const (
	badJSON       = "invalid_json"   // not JSON: in the dead set byte for byte
	badArgs       = "args_not_array" // dead, Ferry::InvalidPayload naming "args"
	badClass      = "unknown_class"  // retried once, then dead with Ferry::NoHandler
	badInputs     = "wrong_inputs"   // ChaosLocked with a number for "key": dead, discarded
	hugePayload   = "huge_payload"   // a valid ChaosOK job of a few MB: it must run
	hugeArgBytes  = 3 << 20
	ledgerBadKind = "chaos:malformed"     // jid → kind
	ledgerBadRaw  = "chaos:malformed:raw" // jid → raw bytes, for invalid_json
)

var badKinds = []string{badJSON, badArgs, badClass, badInputs, hugePayload}

// malformedPayload returns the raw bytes of a malformed job of kind with the given jid.
func malformedPayload(kind, jid string) string {
	head := fmt.Sprintf(`"jid":%q,"queue":%q,"created_at":%d,"enqueued_at":%d`, jid, goQueue, time.Now().Unix(), time.Now().Unix())
	switch kind {
	case badJSON:
		return `{"class":"ChaosOK",` + head + `,"args":[1,`
	case badArgs:
		return `{"class":"ChaosOK",` + head + `,"args":"not an array","retry":true}`
	case badClass:
		return `{"class":"ChaosNoSuchClass",` + head + `,"args":[],"retry":1}`
	case badInputs:
		return `{"class":"ChaosLocked",` + head + `,"args":[{"key":42}],"retry":true}`
	case hugePayload:
		return `{"class":"ChaosOK",` + head + `,"args":["` + strings.Repeat("x", hugeArgBytes) + `"],"retry":true}`
	}
	panic("unknown malformed kind " + kind)
}

// feedMalformed pushes one malformed payload of each kind in turn, straight into the Go
// queue of the private Redis (as a broken producer would), every interval until ctx ends.
// Each is recorded in the ledger before and after the LPUSH, as producers record theirs.
func feedMalformed(ctx context.Context, rdb, ledger redis.UniversalClient, every time.Duration, counts *pushCounts) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		kind := badKinds[i%len(badKinds)]
		jid := sidekiq.NewJID()
		raw := malformedPayload(kind, jid)
		_, err := ledger.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, LedgerMaybe, jid)
			p.HSet(ctx, ledgerBadKind, jid, kind)
			if kind == badJSON {
				p.HSet(ctx, ledgerBadRaw, jid, raw)
			}
			return nil
		})
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = rdb.LPush(pctx, "queue:"+goQueue, raw).Err()
		cancel()
		if err == nil {
			err = ledger.SAdd(context.WithoutCancel(ctx), LedgerPushed, jid).Err()
		}
		counts.add(kind, err)
	}
}
