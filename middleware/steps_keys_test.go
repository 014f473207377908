package middleware_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/middleware"
	"github.com/ferryhq/ferry/testutil"
)

// A jid is payload content: the step record key must stay short and inside the steps
// prefix whatever the jid is. On the unfixed middleware the key was prefix+jid as it came,
// so a 1 MB jid made a 1 MB key and "x:y" reached into a sub-keyspace of the prefix.
func TestStepRecordKeyBoundedForAnyJID(t *testing.T) {
	t.Parallel()
	rdb, mr := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	steps := middleware.Steps(rdb, &middleware.StepsConfig{Namespace: "app"})
	shape := regexp.MustCompile(`^app:ferry:steps:([A-Za-z0-9_-]{1,64}|h:[0-9a-f]{64})$`)
	jids := []string{
		"2f1a7c3e9b8d4c5a6e7f8091", // Sidekiq's: kept as it is
		strings.Repeat("j", 1<<20), // a megabyte
		"x:y", "queue:critical", "*", "{tag}", "a\nb", "../../etc", "h:" + strings.Repeat("0", 64),
	}
	keys := map[string]string{}
	for _, jid := range jids {
		key := steps.Key(jid)
		if !shape.MatchString(key) {
			t.Errorf("jid %.40q: key %.80q, want app:ferry:steps:<plain jid or h:sha256>", jid, key)
		}
		if other, dup := keys[key]; dup {
			t.Errorf("jids %.40q and %.40q share the key %s", jid, other, key)
		}
		keys[key] = jid
		job := jobWithArgs(t, "W", `[]`)
		job.JID = jid
		err := steps.InterceptRun(ctx, job, func(ctx context.Context) error {
			_, err := middleware.Step(ctx, "one", func(context.Context) (int, error) { return 1, nil })
			if err != nil {
				return err
			}
			return context.Canceled // a failure keeps the record, so it can be looked at
		})
		if err != context.Canceled {
			t.Fatalf("run: %v", err)
		}
		if !mr.Exists(key) {
			t.Errorf("jid %.40q: no record at %s", jid, key)
		}
	}
	for _, k := range mr.Keys() {
		if !shape.MatchString(k) {
			t.Errorf("key %.80q (%d bytes) written outside the shape", k, len(k))
		}
	}
	if steps.Key("2f1a7c3e9b8d4c5a6e7f8091") != "app:ferry:steps:2f1a7c3e9b8d4c5a6e7f8091" {
		t.Errorf("a Sidekiq jid's key changed: records written before would be lost")
	}
}
