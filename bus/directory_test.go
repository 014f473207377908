package bus

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"go.uber.org/zap"
)

// TestDirectoryReadsAgree: the Lua read and the pipelined read (Redis Cluster) see the same
// applications and subscriptions, the hostile and broken entries included.
func TestDirectoryReadsAgree(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	ctx := context.Background()
	sub := func(key, queue string) string {
		return fmt.Sprintf(`{"queue_name":%q,"key":%q,"class":"::QueueBus::Rider","matcher":{"bus_event_type":%q}}`, queue, key, key)
	}
	db.Client.SAdd(ctx, "bus_apps", "app1", "App-Two", "évian", "_", "missing", "bad\xffname")
	db.Client.HSet(ctx, "bus_app:bad_name", "x", sub("x", "q"))
	db.Client.HSet(ctx, "bus_app:app1", "a", sub("a", "app1_default"), "b", sub("b", "Other Queue"), "bad", "not json", "nokey", `{"queue_name":"q"}`)
	db.Client.HSet(ctx, "bus_app:app_two", "a", sub("a", "app_two_default"), "dup", sub("a", "elsewhere"))
	db.Client.HSet(ctx, "bus_app:_vian", "x", sub("x", "q"))

	describe := func(apps []remoteApp) []string {
		var out []string
		for _, a := range apps {
			for _, s := range a.subs {
				out = append(out, a.key+"/"+s.key+"@"+s.queue)
			}
			if len(a.subs) == 0 {
				out = append(out, a.key+" (none)")
			}
		}
		sort.Strings(out)
		return out
	}
	script := newDirectory(db.Client, keyspace{}, zap.NewNop())
	piped := newDirectory(db.Client, keyspace{}, zap.NewNop())
	piped.pipelined = true
	a, err := script.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := piped.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, other := describe(a), describe(b)
	if !reflect.DeepEqual(got, other) {
		t.Fatalf("Lua read %v\npipelined read %v", got, other)
	}
	// app_two's "dup" entry names key "a" again: the entry of field "a" is kept.
	if len(got) != 5 || got[0] != "_vian/x@q" || got[1] != "app1/a@app1_default" || got[2] != "app1/b@other_queue" ||
		got[3] != "app_two/a@app_two_default" || got[4] != "missing (none)" {
		t.Fatalf("read %v", got)
	}
}
