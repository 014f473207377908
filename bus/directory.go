package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
)

// readSubscriptionsScript reads every application's subscriptions in one call: for each
// member of bus_apps, the name, the name normalized as queue-bus's Application does
// (gsub(/\W/, '_').downcase: one '_' per non-word character, a UTF-8 sequence counting as
// one), and the flattened hash bus_app:<normalized>.
var readSubscriptionsScript = redis.NewScript(`
local apps = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, app in ipairs(apps) do
  local norm = string.gsub(app, '[\192-\247][\128-\191]*', '_')
  norm = string.lower((string.gsub(norm, '[^%w_]', '_')))
  out[#out + 1] = app
  out[#out + 1] = norm
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. norm)
end
return out
`)

// remoteApp is one application's subscriptions as a driver reads them.
type remoteApp struct {
	key  string
	subs []*remoteSub
}

// remoteSub is a subscription read from Redis: queue-bus's Subscription.from_redis.
type remoteSub struct {
	key     string
	queue   string
	class   string
	matcher *matcher
}

// directory reads the subscriptions of every application for the driver. Parsed
// subscriptions are cached by their stored JSON, so a driver compiles each matcher once;
// what is stored is read again for every event, as queue-bus does, so a Register is seen
// by the next event driven.
type directory struct {
	rdb       redis.UniversalClient
	keys      keyspace
	log       *zap.Logger
	pipelined bool // read without Lua (Redis Cluster)

	mu    sync.Mutex
	cache map[string]*remoteSub // nil value: the JSON is not a usable subscription
}

// maxCachedSubscriptions bounds the parse cache; it is emptied when full.
const maxCachedSubscriptions = 10000

func newDirectory(rdb redis.UniversalClient, keys keyspace, log *zap.Logger) *directory {
	_, cluster := rdb.(*redis.ClusterClient)
	return &directory{rdb: rdb, keys: keys, log: log, pipelined: cluster, cache: map[string]*remoteSub{}}
}

// load returns every application's subscriptions: in one Lua call, or, on a Redis
// Cluster (where a script may only touch the keys it declares), with SMEMBERS and then a
// pipeline of HGETALLs, as queue-bus reads them.
func (d *directory) load(ctx context.Context) ([]remoteApp, error) {
	if d.pipelined {
		return d.loadPipelined(ctx)
	}
	res, err := readSubscriptionsScript.Run(ctx, d.rdb, []string{d.keys.apps()}, d.keys.appPrefix()).Slice()
	if err != nil {
		return nil, fmt.Errorf("bus: reading subscriptions: %w", err)
	}
	apps := make([]remoteApp, 0, len(res)/3)
	for i := 0; i+2 < len(res); i += 3 {
		name, _ := res[i].(string)
		norm, _ := res[i+1].(string)
		flat, _ := res[i+2].([]any)
		if !utf8.ValidString(name) || norm != Normalize(name) || !validAppKey(norm) {
			d.skipApp(name)
			continue
		}
		fields := make(map[string]string, len(flat)/2)
		for j := 0; j+1 < len(flat); j += 2 {
			field, _ := flat[j].(string)
			raw, _ := flat[j+1].(string)
			fields[field] = raw
		}
		apps = append(apps, d.app(norm, fields))
	}
	return apps, nil
}

func (d *directory) loadPipelined(ctx context.Context) ([]remoteApp, error) {
	names, err := d.rdb.SMembers(ctx, d.keys.apps()).Result()
	if err != nil {
		return nil, fmt.Errorf("bus: reading subscriptions: %w", err)
	}
	var keys []string
	cmds, err := d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, name := range names {
			norm := Normalize(name)
			if !utf8.ValidString(name) || !validAppKey(norm) {
				d.skipApp(name)
				continue
			}
			keys = append(keys, norm)
			p.HGetAll(ctx, d.keys.app(norm))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bus: reading subscriptions: %w", err)
	}
	apps := make([]remoteApp, 0, len(keys))
	for i, c := range cmds {
		apps = append(apps, d.app(keys[i], c.(*redis.MapStringStringCmd).Val()))
	}
	return apps, nil
}

// skipApp warns of an application key queue-bus cannot use. queue-bus raises on one and
// stops driving altogether until it is removed; Ferry skips it.
func (d *directory) skipApp(name string) {
	d.log.Warn("bus: skipping an application whose key queue-bus cannot use", logcap.String("app", name))
}

// app builds one application's subscriptions from its hash (queue-bus's
// SubscriptionList.from_redis). Where two entries hold the same subscription key, which
// queue-bus refuses, the entry with the lowest hash field wins.
func (d *directory) app(key string, hash map[string]string) remoteApp {
	fields := make([]string, 0, len(hash))
	for f := range hash {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	app := remoteApp{key: key}
	seen := map[string]bool{}
	for _, f := range fields {
		sub := d.parse(hash[f], key)
		if sub == nil || seen[sub.key] {
			continue
		}
		seen[sub.key] = true
		app.subs = append(app.subs, sub)
	}
	return app
}

// parse returns the subscription stored as raw, or nil when raw is not one (queue-bus
// skips entries without a key or queue name).
func (d *directory) parse(raw, appKey string) *remoteSub {
	d.mu.Lock()
	sub, ok := d.cache[raw]
	d.mu.Unlock()
	if ok {
		return sub
	}
	sub = parseRemoteSub(raw)
	if sub != nil {
		if key, err := sub.matcher.badPattern(); err != nil {
			d.log.Warn("bus: a subscription's pattern cannot be evaluated by a Go driver; it never matches here",
				logcap.String("app", appKey), logcap.String("subscription", sub.key), logcap.String("attribute", key), logcap.Error(err))
		}
	}
	d.mu.Lock()
	if len(d.cache) >= maxCachedSubscriptions {
		d.cache = map[string]*remoteSub{}
	}
	d.cache[raw] = sub
	d.mu.Unlock()
	return sub
}

func parseRemoteSub(raw string) *remoteSub {
	var h map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &h) != nil {
		return nil
	}
	queue := Normalize(rubyToS(h["queue_name"]))
	key := rubyToS(h["key"])
	if key == "" || queue == "" {
		return nil
	}
	filters := map[string]string{}
	if m, err := parseAttrs(h["matcher"]); err == nil {
		for i, k := range m.keys {
			filters[k] = rubyToS(m.vals[i])
		}
	}
	return &remoteSub{key: key, queue: queue, class: rubyToS(h["class"]), matcher: compileMatch(filters)}
}
