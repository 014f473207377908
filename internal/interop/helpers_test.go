package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// rubyTyped defines ferry_typed(value): a JSON-safe description of a Ruby value that keeps
// its class, so the Go side can compare types as well as values ("Integer" vs "Float",
// String vs Symbol keys). Integers are written as decimal strings so that no JSON reader
// on the way can round them; Floats as JSON floats (Ruby always writes a fraction or an
// exponent). Hash entries are sorted by key so the Go side need not know insertion order.
const rubyTyped = `
def ferry_typed(v)
  case v
  when Hash
    ["Hash", v.map { |k, x| [ferry_typed(k), ferry_typed(x)] }.sort_by { |k, _| [k[0], k[1].to_s] }]
  when Array then ["Array", v.map { |x| ferry_typed(x) }]
  when Integer then ["Integer", v.to_s]
  when Float then ["Float", v]
  when String then ["String", v]
  when Symbol then ["Symbol", v.to_s]
  when NilClass, TrueClass, FalseClass then [v.class.name]
  when Time then ["Time", v.utc.strftime("%Y-%m-%dT%H:%M:%S.%NZ")]
  else [v.class.name, v.to_s]
  end
end
`

// Keys of the Redis hashes the round-trip comparator reads: original payload bytes and
// Go's re-encoding, both by an id chosen by the test.
const (
	keyOriginal  = "ferry:original"
	keyReencoded = "ferry:reencoded"
)

// rubyCompare is run by Ruby: for every id in ferry:original it parses the original payload
// and Go's re-encoding and reports whether Ruby reads them the same way, three ways:
//
//	eql   JSON.parse(orig).eql?(JSON.parse(re)): values equal and 1 never equals 1.0
//	typed ferry_typed of both is ==: the same, spelled out with class names
//	api   Sidekiq::JobRecord (what the Web UI and API use) returns eql? results for
//	      class, display_class, display_args, args, jid, queue, created_at, enqueued_at,
//	      tags and error_backtrace (an exception counts as a result: its class must match)
const rubyCompare = rubyTyped + `
def ferry_api(raw)
  r = Sidekiq::JobRecord.new(raw)
  %i[klass display_class display_args args jid queue created_at enqueued_at tags error_backtrace].map do |m|
    begin
      [m.to_s, r.public_send(m)]
    rescue => e
      [m.to_s, "raised #{e.class}"]
    end
  end.to_h
end

orig = Sidekiq.redis { |c| c.hgetall("ferry:original") }
re = Sidekiq.redis { |c| c.hgetall("ferry:reencoded") }
report = {}
orig.each do |id, o|
  r = re[id]
  if r.nil?
    report[id] = {"missing" => true}
    next
  end
  po, pr = JSON.parse(o), JSON.parse(r)
  ao, ar = ferry_api(o), ferry_api(r)
  diff = ao.keys.reject { |k| ao[k].eql?(ar[k]) }
  report[id] = {
    "eql" => po.eql?(pr),
    "typed" => ferry_typed(po) == ferry_typed(pr),
    "api" => diff.empty?,
    "api_diff" => diff.map { |k| [k, ao[k].inspect, ar[k].inspect] },
  }
end
puts JSON.generate(report)
`

// roundTrip is one payload for compareInRuby: the bytes Ruby (or a fixture) wrote and Go's
// re-encoding of them.
type roundTrip struct {
	id         string
	orig, reen []byte
}

// compareInRuby stores the pairs in Redis, runs rubyCompare and fails the test unless Ruby
// reads every re-encoding exactly as it reads the original. A control pair that differs only
// in 1 vs 1.0 is added and must be reported as different, so the comparison is known to
// see Integer vs Float.
func compareInRuby(t *testing.T, sk *testsuite.RubySidekiq, db *testsuite.RealRedisDB, pairs []roundTrip, opts ...testsuite.RubyOption) {
	t.Helper()
	ctx := t.Context()
	const control = "control: 1 vs 1.0"
	pairs = append(pairs, roundTrip{
		id:   control,
		orig: []byte(`{"class":"X","queue":"default","args":[1],"jid":"c0ffee"}`),
		reen: []byte(`{"class":"X","queue":"default","args":[1.0],"jid":"c0ffee"}`),
	})
	for _, p := range pairs {
		if err := db.Client.HSet(ctx, keyOriginal, p.id, p.orig).Err(); err != nil {
			t.Fatal(err)
		}
		if err := db.Client.HSet(ctx, keyReencoded, p.id, p.reen).Err(); err != nil {
			t.Fatal(err)
		}
	}
	out := sk.Ruby(t, db.URL, rubyCompare, opts...)
	var report map[string]struct {
		Missing bool       `json:"missing"`
		Eql     bool       `json:"eql"`
		Typed   bool       `json:"typed"`
		API     bool       `json:"api"`
		APIDiff [][]string `json:"api_diff"`
	}
	mustUnmarshal(t, lastLine(out), &report)
	if len(report) != len(pairs) {
		t.Fatalf("Ruby compared %d payloads, want %d", len(report), len(pairs))
	}
	for _, p := range pairs {
		r, ok := report[p.id]
		switch {
		case !ok || r.Missing:
			t.Errorf("%s: Ruby did not compare it", p.id)
		case p.id == control:
			if r.Eql || r.Typed || r.API {
				t.Errorf("control pair [1] vs [1.0] reported equal (eql=%v typed=%v api=%v): the comparison cannot see Integer vs Float", r.Eql, r.Typed, r.API)
			}
		case !r.Eql || !r.Typed || !r.API:
			t.Errorf("%s: Ruby reads Go's re-encoding differently: eql=%v typed=%v api=%v %v\noriginal:   %s\nre-encoded: %s",
				p.id, r.Eql, r.Typed, r.API, r.APIDiff, p.orig, p.reen)
		}
	}
}

// ---- typed trees ------------------------------------------------------------------------
//
// A typed tree is the Go form of what ferry_typed prints: []any{"Integer", "123"},
// []any{"Float", <uint64 bits>}, []any{"String", s}, []any{"NilClass"}, []any{"TrueClass"},
// []any{"Array", []any{...}}, []any{"Hash", []any{[]any{key, value}, ...}} with entries sorted
// by key. Floats are compared by their bits, so -0.0 differs from 0.0.

// fromRuby converts ferry_typed output (decoded with UseNumber) to a typed tree.
func fromRuby(node any) (any, error) {
	n, ok := node.([]any)
	if !ok || len(n) == 0 {
		return nil, fmt.Errorf("not a typed node: %#v", node)
	}
	name, _ := n[0].(string)
	switch name {
	case "NilClass", "TrueClass", "FalseClass":
		return []any{name}, nil
	case "Integer", "String", "Symbol", "Time":
		s, _ := n[1].(string)
		return []any{name, s}, nil
	case "Float":
		num, ok := n[1].(json.Number)
		if !ok {
			return nil, fmt.Errorf("Float node holds %#v", n[1])
		}
		f, err := strconv.ParseFloat(num.String(), 64)
		if err != nil {
			return nil, err
		}
		return []any{"Float", math.Float64bits(f)}, nil
	case "Array":
		items, _ := n[1].([]any)
		out := make([]any, 0, len(items))
		for _, it := range items {
			c, err := fromRuby(it)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return []any{"Array", out}, nil
	case "Hash":
		entries, _ := n[1].([]any)
		out := make([]any, 0, len(entries))
		for _, e := range entries {
			kv, _ := e.([]any)
			if len(kv) != 2 {
				return nil, fmt.Errorf("bad Hash entry %#v", e)
			}
			k, err := fromRuby(kv[0])
			if err != nil {
				return nil, err
			}
			v, err := fromRuby(kv[1])
			if err != nil {
				return nil, err
			}
			out = append(out, []any{k, v})
		}
		return []any{"Hash", out}, nil
	}
	s := ""
	if len(n) > 1 {
		s = fmt.Sprint(n[1])
	}
	return []any{name, s}, nil
}

// fromDecoded converts a value decoded by Ferry (nil, bool, json.Number, string, []any,
// map[string]any) to the typed tree of the Ruby value JSON.parse makes of the same JSON:
// a number with a fraction or exponent is a Float, any other number an Integer.
func fromDecoded(v any) any {
	switch x := v.(type) {
	case nil:
		return []any{"NilClass"}
	case bool:
		if x {
			return []any{"TrueClass"}
		}
		return []any{"FalseClass"}
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return []any{"bad float", s}
			}
			return []any{"Float", math.Float64bits(f)}
		}
		var b big.Int
		if _, ok := b.SetString(s, 10); !ok {
			return []any{"bad integer", s}
		}
		return []any{"Integer", b.String()}
	case string:
		return []any{"String", x}
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, fromDecoded(e))
		}
		return []any{"Array", out}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]any, 0, len(x))
		for _, k := range keys {
			out = append(out, []any{[]any{"String", k}, fromDecoded(x[k])})
		}
		return []any{"Hash", out}
	}
	return []any{fmt.Sprintf("unexpected Go type %T", v), fmt.Sprint(v)}
}

// fromSent is the typed tree of the Ruby value a Go argument must arrive as, worked out
// from the Go type alone (not from Ferry's encoding): floats are Floats even when whole,
// integers of any width are Integers, float32 arrives as its shortest decimal form.
func fromSent(v any) any {
	switch x := v.(type) {
	case nil:
		return []any{"NilClass"}
	case json.Number:
		return fromDecoded(x)
	case float32:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return []any{"Float", math.Float64bits(f)}
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		if rv.Bool() {
			return []any{"TrueClass"}
		}
		return []any{"FalseClass"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return []any{"Integer", strconv.FormatInt(rv.Int(), 10)}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return []any{"Integer", strconv.FormatUint(rv.Uint(), 10)}
	case reflect.Float64:
		return []any{"Float", math.Float64bits(rv.Float())}
	case reflect.String:
		return []any{"String", rv.String()}
	case reflect.Slice, reflect.Array:
		out := make([]any, 0, rv.Len())
		for i := 0; i < rv.Len(); i++ {
			out = append(out, fromSent(rv.Index(i).Interface()))
		}
		return []any{"Array", out}
	case reflect.Map:
		keys := make([]string, 0, rv.Len())
		vals := map[string]any{}
		for _, k := range rv.MapKeys() {
			ks := fmt.Sprint(k.Interface())
			keys = append(keys, ks)
			vals[ks] = rv.MapIndex(k).Interface()
		}
		sort.Strings(keys)
		out := make([]any, 0, len(keys))
		for _, k := range keys {
			out = append(out, []any{[]any{"String", k}, fromSent(vals[k])})
		}
		return []any{"Hash", out}
	}
	return []any{fmt.Sprintf("unsupported Go type %T", v)}
}

// rubyTree decodes a ferry_typed node held as raw JSON.
func rubyTree(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var node any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&node); err != nil {
		t.Fatalf("decoding Ruby's typed value %s: %v", raw, err)
	}
	tree, err := fromRuby(node)
	if err != nil {
		t.Fatalf("Ruby's typed value %s: %v", raw, err)
	}
	return tree
}

func showTree(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func sameTree(a, b any) bool { return reflect.DeepEqual(a, b) }

// ---- small helpers ----------------------------------------------------------------------

func lastLine(s string) []byte {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return []byte(lines[len(lines)-1])
}

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}

// rubyFloatTime turns Ruby's float epoch seconds into a time.
func rubyFloatTime(t *testing.T, n json.Number) time.Time {
	t.Helper()
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		t.Fatalf("not a float: %q", n)
	}
	return floatTime(f)
}

// stampTime is the instant of a timestamp typed tree as the release writes it: a Float of
// epoch seconds up to 7.x, an Integer of epoch milliseconds from 8.x. ok is false when the
// type is not the release's.
func stampTime(sk *testsuite.RubySidekiq, typed any) (at time.Time, ok bool) {
	n, _ := typed.([]any)
	if len(n) != 2 {
		return time.Time{}, false
	}
	switch {
	case sk.Millis() && n[0] == "Integer":
		ms, err := strconv.ParseInt(n[1].(string), 10, 64)
		return time.UnixMilli(ms), err == nil
	case !sk.Millis() && n[0] == "Float":
		return floatTime(math.Float64frombits(n[1].(uint64))), true
	}
	return time.Time{}, false
}

// floatSeconds stands for any writer of float-second timestamps (Ferry's default, 6.x,
// 7.x) in stampTime.
var floatSeconds = testsuite.Sidekiq6

// floatTime turns float epoch seconds into a time.
func floatTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9)))
}

// sameInstant reports whether two times are the same float-seconds instant: a double near
// 1.8e9 resolves about 0.24 µs, so 1 µs is "exact" while any unit mix-up is off by years.
func sameInstant(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Microsecond && d < time.Microsecond
}

// requireRecent fails unless t is within a minute of now (not 1970, not year 58,000).
func requireRecent(tb testing.TB, what string, t time.Time) {
	tb.Helper()
	if d := time.Since(t); d < -time.Minute || d > time.Minute {
		tb.Errorf("%s = %v, not within a minute of now", what, t)
	}
}

// topLevel splits a JSON object into its keys' raw values.
func topLevel(t *testing.T, payload []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, payload)
	}
	return m
}

// requireSameBytes fails unless every key of orig except skip has byte-identical value in
// re, and re has no key orig lacks.
func requireSameBytes(t *testing.T, name string, orig, re []byte, skip ...string) {
	t.Helper()
	o, r := topLevel(t, orig), topLevel(t, re)
	for _, k := range skip {
		delete(o, k)
	}
	for k, ov := range o {
		rv, ok := r[k]
		if !ok {
			t.Errorf("%s: key %q lost by re-encoding", name, k)
			continue
		}
		if !bytes.Equal(ov, rv) {
			t.Errorf("%s: key %q changed bytes: %s -> %s", name, k, ov, rv)
		}
	}
	for k := range r {
		if _, ok := o[k]; !ok {
			t.Errorf("%s: re-encoding added key %q: %s", name, k, r[k])
		}
	}
}

// reencode returns Ferry's re-encoding of a parsed job and checks it parses back.
func reencode(t *testing.T, j *sidekiq.Job, f sidekiq.TimeFormat) []byte {
	t.Helper()
	out := j.AppendJSON(nil, f)
	if !json.Valid(out) {
		t.Fatalf("AppendJSON produced invalid JSON: %s", out)
	}
	return out
}

// waitResults pops n JSON records from a Redis list (RPUSHed by Ruby jobs) with BLPOP until
// the deadline. It stops early if the sidekiq process exits.
func waitResults(t *testing.T, rdb *redis.Client, key string, n int, deadline time.Duration, p *testsuite.SidekiqProcess) []json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	var out []json.RawMessage
	for len(out) < n {
		select {
		case <-p.Done():
			t.Fatalf("sidekiq exited after %d of %d results", len(out), n)
		default:
		}
		res, err := rdb.BLPop(ctx, time.Second, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			if ctx.Err() != nil {
				t.Fatalf("got %d of %d results from Ruby within %v", len(out), n, deadline)
			}
			t.Fatal(err)
		}
		out = append(out, json.RawMessage(res[1]))
	}
	return out
}
