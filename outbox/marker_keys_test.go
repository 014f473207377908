package outbox_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/outbox"
	"github.com/ferryhq/ferry/sidekiq"
)

// markerShape is every delivery marker key: the prefix and a plain jid or a hashed one.
var markerShape = regexp.MustCompile(`^` + regexp.QuoteMeta(outbox.MarkerPrefix) + `([A-Za-z0-9_-]{1,64}|h:[0-9a-f]{64})$`)

// A row's jid is content another program may have written: its delivery marker key must
// stay short and inside MarkerPrefix. On the unfixed relay the key was MarkerPrefix+jid
// as it came.
func TestDeliveryMarkerKeyBoundedForAnyJID(t *testing.T) {
	t.Parallel()
	jids := []string{"2f1a7c3e9b8d4c5a6e7f8091", "x:y", "queue:critical", strings.Repeat("j", 4096), "{tag}", "a*b"}
	keys := map[string]string{}
	for _, jid := range jids {
		k := outbox.DeliveryGuard(jid).Key
		if !markerShape.MatchString(k) {
			t.Errorf("jid %.40q: marker %.80q, want %s<plain jid or h:sha256>", jid, k, outbox.MarkerPrefix)
		}
		if other, dup := keys[k]; dup {
			t.Errorf("jids %.40q and %.40q share the marker %s", jid, other, k)
		}
		keys[k] = jid
	}
	if k := outbox.DeliveryGuard(jids[0]).Key; k != outbox.MarkerPrefix+jids[0] {
		t.Errorf("a Sidekiq jid's marker changed to %s: markers set before would not be found", k)
	}
}

// End to end: rows whose jids are not plain are delivered once each, with bounded
// markers, and a relay that finds a row unmarked after the push (it died before its
// commit) still finds the marker and does not push again.
func TestRelayOddJIDsDeliveredOnce(t *testing.T) {
	t.Parallel()
	db, table := newTable(t)
	rr := testsuite.RealRedis(t)
	ctx := context.Background()
	jids := []string{"x:y", strings.Repeat("j", 4096), "{tag}"}
	for _, jid := range jids {
		job := &sidekiq.Job{Class: "OddJob", JID: jid, Queue: "default", Args: []byte("[]"), Retry: sidekiq.RetryTrue()}
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" (jid, payload) VALUES ($1, $2)", jid, string(job.AppendJSON(nil, sidekiq.TimeSeconds))); err != nil {
			t.Fatal(err)
		}
	}
	relay := outbox.NewRelay(db, sidekiq.NewClient(rr.Client, nil), &outbox.RelayConfig{Table: table})
	drain(t, relay)
	// As if the relay had died before its commit: the rows are unmarked again.
	if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET delivered_at = NULL"); err != nil {
		t.Fatal(err)
	}
	drain(t, relay)
	counts := queueCounts(t, rr, "default")
	for _, jid := range jids {
		if counts[jid] != 1 {
			t.Errorf("jid %.40q delivered %d times, want once", jid, counts[jid])
		}
		if s := state(t, db, table, jid); !s.delivered {
			t.Errorf("jid %.40q: row %+v, want delivered", jid, s)
		}
	}
	keys, err := rr.Client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	markers := 0
	for _, k := range keys {
		if strings.HasPrefix(k, outbox.MarkerPrefix) {
			markers++
			if !markerShape.MatchString(k) {
				t.Errorf("marker %.80q (%d bytes), want %s<plain jid or h:sha256>", k, len(k), outbox.MarkerPrefix)
			}
		}
	}
	if markers != len(jids) {
		t.Errorf("%d markers, want %d", markers, len(jids))
	}
}
