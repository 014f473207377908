package middleware

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// Go types for the Ruby values ActiveJob (Rails 6.1 and later) serializes with markers.
// DecodeAJArguments produces them and EncodeAJArguments accepts them, so a value survives a
// trip through Go.
type (
	// Symbol is a Ruby Symbol (SymbolSerializer).
	Symbol string
	// GlobalID is a GlobalID URI of a record, "gid://app/Model/id" (the "_aj_globalid"
	// marker). Rails loads the record when the job runs; Go gets the URI.
	GlobalID string
	// Decimal is a BigDecimal, as its exact decimal string. Rails 6.1 writes BigDecimal as a
	// plain JSON string (so it arrives in Go as a string); 7.1+ use BigDecimalSerializer,
	// which decodes to Decimal. Go writes Decimal as a plain string, which every Rails
	// version reads (as a String; convert with BigDecimal(x) in Ruby).
	Decimal string
	// Module is a Ruby Class or Module, by name (ModuleSerializer).
	Module string
	// Keywords are keyword arguments: as the last argument of PushActiveJob they reach
	// the Ruby job's perform as keywords (perform(..., greeting: "hi")).
	Keywords map[string]any
	// SymbolHash is a Hash whose keys are all Ruby Symbols ({user_id: 1}). A plain
	// map[string]any is a Hash with String keys.
	SymbolHash map[string]any
)

// Date is a Ruby Date (DateSerializer): a calendar day without a time or zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String returns the date as ISO 8601, "2024-02-29".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Time returns midnight of the date in loc.
func (d Date) Time(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// Duration is an ActiveSupport::Duration (DurationSerializer): 2.days + 3.hours is
// {Seconds: 183600, Parts: [{days 2} {hours 3}]}. The parts matter to Ruby: 1.month is not
// a fixed number of seconds.
type Duration struct {
	Seconds float64
	Parts   []DurationPart
}

// DurationPart is one unit of a Duration: Unit is "years", "months", "weeks", "days",
// "hours", "minutes" or "seconds".
type DurationPart struct {
	Unit   string
	Amount float64
}

// Std returns the duration as a time.Duration (by Seconds).
func (d Duration) Std() time.Duration { return time.Duration(d.Seconds * float64(time.Second)) }

// Range is a Ruby Range (RangeSerializer, Rails 7.0+; Rails 6.1 cannot read it).
type Range struct {
	Begin, End any
	ExcludeEnd bool
}

// Serialized is an "_aj_serialized" object of a serializer this package does not know (an
// application's custom serializer): its class and its other keys, decoded.
type Serialized struct {
	Serializer string
	Fields     map[string]any
}

const (
	ajGlobalID     = "_aj_globalid"
	ajSerialized   = "_aj_serialized"
	ajSymbolKeys   = "_aj_symbol_keys"
	ajRuby2Kw      = "_aj_ruby2_keywords"
	ajIndifferent  = "_aj_hash_with_indifferent_access"
	serializerPfx  = "ActiveJob::Serializers::"
	ajTimeLayout   = "2006-01-02T15:04:05.000000000Z07:00"
	ajEnqueuedAtFm = "2006-01-02T15:04:05Z07:00"
)

func isReservedKey(k string) bool {
	switch k {
	case ajGlobalID, ajSerialized, ajSymbolKeys, ajRuby2Kw, ajIndifferent, "_aj_symbol_keys_hash":
		return true
	}
	return false
}

// AJArgs are the arguments of an ActiveJob job and its envelope.
type AJArgs struct {
	// Args are the positional arguments. Ruby values map to Go as: nil → nil, true/false →
	// bool, Integer → int64 (json.Number beyond int64), Float → float64, String → string,
	// Array → []any, Hash → map[string]any (symbol and string keys alike), and the
	// serialized kinds to Symbol, GlobalID, time.Time (Time, DateTime and
	// ActiveSupport::TimeWithZone, with their offset), Date, Duration, Decimal, Module,
	// Range, or Serialized for unknown serializers.
	Args []any
	// Keywords are the keyword arguments (perform_later(42, greeting: "hi") gives
	// {"greeting": "hi"}), or nil when there are none.
	Keywords map[string]any
	// Envelope is the rest of ActiveJob's serialized job.
	Envelope AJEnvelope
}

// AJEnvelope is ActiveJob's serialized job (the job's args[0]) apart from its arguments.
type AJEnvelope struct {
	JobClass   string `json:"job_class"`
	JobID      string `json:"job_id"`
	QueueName  string `json:"queue_name"`
	Priority   *int   `json:"priority"`
	Executions int    `json:"executions"`
	Locale     string `json:"locale"`
	Timezone   string `json:"timezone"`
	EnqueuedAt string `json:"enqueued_at"`
	// Arguments is the serialized arguments array as it came; AJArgs has it decoded.
	Arguments json.RawMessage `json:"arguments"`
}

// AJFunc is a handler for an ActiveJob job class.
type AJFunc func(ctx context.Context, job *sidekiq.Job, args AJArgs) error

// ActiveJob returns a handler for jobs a Rails app enqueues with perform_later on the
// Sidekiq adapter. Register it under the ActiveJob class name (the server routes ActiveJob
// jobs by "wrapped"):
//
//	srv.Handle("WelcomeEmailJob", middleware.ActiveJob(func(ctx context.Context, job *sidekiq.Job, a middleware.AJArgs) error {
//		userID := a.Args[0].(int64)
//		greeting, _ := a.Keywords["greeting"].(string)
//		...
//	}))
//
// The arguments are decoded as DecodeActiveJob does. A job that is not an ActiveJob
// envelope, or whose arguments cannot be decoded, goes straight to the dead set
// (sidekiq.Discard with an *InputError).
func ActiveJob(fn AJFunc) sidekiq.Handler {
	return sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		a, err := DecodeActiveJob(job)
		if err != nil {
			return sidekiq.Discard(err)
		}
		return fn(ctx, job, a)
	})
}

// DecodeActiveJob decodes the envelope and arguments of an ActiveJob job. The last
// argument becomes Keywords when Rails marked it as keyword arguments
// ("_aj_ruby2_keywords"). Errors are *InputError.
func DecodeActiveJob(job *sidekiq.Job) (AJArgs, error) {
	class := job.HandlerName()
	obj, ierr := singleObject(job.Args)
	if ierr != nil {
		ierr.Class = class
		ierr.Reason = "not an ActiveJob envelope: " + ierr.Reason
		return AJArgs{}, ierr
	}
	var a AJArgs
	if err := json.Unmarshal(obj, &a.Envelope); err != nil {
		return AJArgs{}, decodeError(class, err)
	}
	if a.Envelope.JobClass == "" || len(a.Envelope.Arguments) == 0 {
		return AJArgs{}, &InputError{Class: class, Field: "args", Reason: "not an ActiveJob envelope: no job_class or arguments"}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(a.Envelope.Arguments, &raws); err != nil {
		return AJArgs{}, &InputError{Class: class, Field: "arguments", Reason: "not an array", Err: err}
	}
	a.Args = make([]any, 0, len(raws))
	for i, raw := range raws {
		v, kw, err := decodeAJ(raw)
		if err != nil {
			return AJArgs{}, &InputError{Class: class, Field: fmt.Sprintf("arguments[%d]", i), Reason: err.Error(), Err: err}
		}
		if kw && i == len(raws)-1 {
			a.Keywords = v.(map[string]any)
			continue
		}
		a.Args = append(a.Args, v)
	}
	return a, nil
}

// DecodeAJArguments decodes an ActiveJob "arguments" array. A keyword-arguments hash is
// returned as Keywords.
func DecodeAJArguments(raw json.RawMessage) ([]any, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, err
	}
	out := make([]any, len(raws))
	for i, r := range raws {
		v, kw, err := decodeAJ(r)
		if err != nil {
			return nil, fmt.Errorf("arguments[%d]: %w", i, err)
		}
		if kw {
			v = Keywords(v.(map[string]any))
		}
		out[i] = v
	}
	return out, nil
}

// decodeAJ decodes one serialized argument; kw reports a keyword-arguments hash.
func decodeAJ(raw json.RawMessage) (v any, kw bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch jsonwire.KindOf(raw) {
	case jsonwire.Number:
		n := json.Number(raw)
		if !strings.ContainsAny(string(raw), ".eE") {
			if i, err := n.Int64(); err == nil {
				return i, false, nil
			}
			return n, false, nil
		}
		f, err := n.Float64()
		return f, false, err
	case jsonwire.Array:
		var raws []json.RawMessage
		if err := json.Unmarshal(raw, &raws); err != nil {
			return nil, false, err
		}
		out := make([]any, len(raws))
		for i, r := range raws {
			if out[i], _, err = decodeAJ(r); err != nil {
				return nil, false, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return out, false, nil
	case jsonwire.Object:
		return decodeAJObject(raw)
	default: // string, bool, null
		var x any
		err := json.Unmarshal(raw, &x)
		return x, false, err
	}
}

func decodeAJObject(raw json.RawMessage) (any, bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false, err
	}
	if g, ok := m[ajGlobalID]; ok && len(m) == 1 {
		var s string
		if err := json.Unmarshal(g, &s); err != nil {
			return nil, false, fmt.Errorf("%s: %w", ajGlobalID, err)
		}
		return GlobalID(s), false, nil
	}
	if s, ok := m[ajSerialized]; ok {
		var name string
		if err := json.Unmarshal(s, &name); err != nil {
			return nil, false, fmt.Errorf("%s: %w", ajSerialized, err)
		}
		v, err := decodeSerialized(name, m)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", strings.TrimPrefix(name, serializerPfx), err)
		}
		return v, false, nil
	}
	_, kw := m[ajRuby2Kw]
	out := make(map[string]any, len(m))
	for k, r := range m {
		if k == ajSymbolKeys || k == ajRuby2Kw || k == ajIndifferent {
			continue
		}
		v, _, err := decodeAJ(r)
		if err != nil {
			return nil, false, fmt.Errorf("%q: %w", k, err)
		}
		out[k] = v
	}
	return out, kw, nil
}

func decodeSerialized(name string, m map[string]json.RawMessage) (any, error) {
	str := func(k string) (string, error) {
		var s string
		if err := json.Unmarshal(m[k], &s); err != nil {
			return "", fmt.Errorf("%q: %w", k, err)
		}
		return s, nil
	}
	switch strings.TrimPrefix(name, serializerPfx) {
	case "SymbolSerializer":
		s, err := str("value")
		return Symbol(s), err
	case "ModuleSerializer":
		s, err := str("value")
		return Module(s), err
	case "BigDecimalSerializer":
		s, err := str("value")
		return Decimal(s), err
	case "TimeSerializer", "DateTimeSerializer", "TimeWithZoneSerializer":
		s, err := str("value")
		if err != nil {
			return nil, err
		}
		return time.Parse(time.RFC3339Nano, s)
	case "DateSerializer":
		s, err := str("value")
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, err
		}
		return Date{t.Year(), t.Month(), t.Day()}, nil
	case "DurationSerializer":
		var d Duration
		if err := json.Unmarshal(m["value"], &d.Seconds); err != nil {
			return nil, fmt.Errorf(`"value": %w`, err)
		}
		parts, _, err := decodeAJ(m["parts"])
		if err != nil {
			return nil, fmt.Errorf(`"parts": %w`, err)
		}
		list, _ := parts.([]any)
		for _, p := range list {
			pair, ok := p.([]any)
			if !ok || len(pair) != 2 {
				return nil, fmt.Errorf(`"parts": want [unit, amount] pairs, got %v`, p)
			}
			unit := fmt.Sprint(pair[0])
			var amount float64
			switch n := pair[1].(type) {
			case int64:
				amount = float64(n)
			case float64:
				amount = n
			default:
				return nil, fmt.Errorf(`"parts": amount %v is not a number`, pair[1])
			}
			d.Parts = append(d.Parts, DurationPart{Unit: unit, Amount: amount})
		}
		return d, nil
	case "RangeSerializer":
		var r Range
		var err error
		if r.Begin, _, err = decodeAJ(m["begin"]); err != nil {
			return nil, err
		}
		if r.End, _, err = decodeAJ(m["end"]); err != nil {
			return nil, err
		}
		_ = json.Unmarshal(m["exclude_end"], &r.ExcludeEnd)
		return r, nil
	}
	s := Serialized{Serializer: name, Fields: make(map[string]any, len(m))}
	for k, r := range m {
		if k == ajSerialized {
			continue
		}
		v, _, err := decodeAJ(r)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		s.Fields[k] = v
	}
	return s, nil
}

// EncodeAJArguments serializes Go values as ActiveJob "arguments", the way Rails 6.1
// serializes the corresponding Ruby values, so the Ruby job receives: nil, bool, integers
// (every Go integer type and json.Number), floats (always with a fraction, so Ruby sees a
// Float), string, Decimal (as a String), slices and arrays (Array), map[string]V (a Hash
// with String keys), SymbolHash (Symbol keys), Keywords (keyword arguments), Symbol,
// GlobalID (the record, loaded by Rails), time.Time (Time), Date, Duration, Module and Range
// (Rails 7.0+). Any other type is an error, as is a map key ActiveJob reserves ("_aj_…").
func EncodeAJArguments(args []any) (json.RawMessage, error) {
	buf := []byte{'['}
	for i, a := range args {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendAJ(buf, a, 0); err != nil {
			return nil, fmt.Errorf("middleware: ActiveJob argument %d: %w", i, err)
		}
	}
	return append(buf, ']'), nil
}

func appendSerialized(buf []byte, serializer string, kv ...any) ([]byte, error) {
	buf = append(buf, `{"_aj_serialized":`...)
	buf = jsonwire.AppendString(buf, serializerPfx+serializer)
	for i := 0; i < len(kv); i += 2 {
		buf = append(buf, ',')
		buf = jsonwire.AppendString(buf, kv[i].(string))
		buf = append(buf, ':')
		var err error
		if raw, ok := kv[i+1].(json.RawMessage); ok {
			buf = append(buf, raw...)
		} else if buf, err = appendAJ(buf, kv[i+1], 1); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendAJ(buf []byte, a any, depth int) ([]byte, error) {
	if depth > 100 {
		return nil, errors.New("nested too deeply")
	}
	switch v := a.(type) {
	case nil:
		return append(buf, "null"...), nil
	case bool:
		return strconv.AppendBool(buf, v), nil
	case string:
		return jsonwire.AppendString(buf, v), nil
	case Decimal:
		return jsonwire.AppendString(buf, string(v)), nil
	case json.Number:
		if !jsonwire.Valid([]byte(v)) || jsonwire.KindOf([]byte(v)) != jsonwire.Number {
			return nil, fmt.Errorf("invalid json.Number %q", v)
		}
		return append(buf, v...), nil
	case Symbol:
		return appendSerialized(buf, "SymbolSerializer", "value", string(v))
	case Module:
		return appendSerialized(buf, "ModuleSerializer", "value", string(v))
	case GlobalID:
		buf = append(buf, `{"_aj_globalid":`...)
		buf = jsonwire.AppendString(buf, string(v))
		return append(buf, '}'), nil
	case time.Time:
		return appendSerialized(buf, "TimeSerializer", "value", v.Format(ajTimeLayout))
	case Date:
		return appendSerialized(buf, "DateSerializer", "value", v.String())
	case Duration:
		parts := v.Parts
		if len(parts) == 0 {
			parts = []DurationPart{{Unit: "seconds", Amount: v.Seconds}}
		}
		pl := make([]any, len(parts))
		for i, p := range parts {
			pl[i] = []any{Symbol(p.Unit), rubyNumber(p.Amount)}
		}
		return appendSerialized(buf, "DurationSerializer", "value", rubyNumber(v.Seconds), "parts", pl)
	case Range:
		return appendSerialized(buf, "RangeSerializer", "begin", v.Begin, "end", v.End, "exclude_end", v.ExcludeEnd)
	case Keywords:
		return appendAJHash(buf, map[string]any(v), ajRuby2Kw, depth)
	case SymbolHash:
		return appendAJHash(buf, map[string]any(v), ajSymbolKeys, depth)
	case map[string]any:
		return appendAJHash(buf, v, "", depth)
	case []any:
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendAJ(buf, e, depth+1); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(buf, ']'), nil
	}
	rv := reflect.ValueOf(a)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(buf, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(buf, rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v cannot be written as JSON", f)
		}
		return jsonwire.AppendFloat(buf, f), nil
	case reflect.String:
		return jsonwire.AppendString(buf, rv.String()), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return append(buf, "[]"...), nil
		}
		list := make([]any, rv.Len())
		for i := range list {
			list[i] = rv.Index(i).Interface()
		}
		return appendAJ(buf, list, depth)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map keys must be strings, got %s", rv.Type().Key())
		}
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[it.Key().String()] = it.Value().Interface()
		}
		return appendAJHash(buf, m, "", depth)
	case reflect.Pointer:
		if rv.IsNil() {
			return append(buf, "null"...), nil
		}
		return appendAJ(buf, rv.Elem().Interface(), depth+1)
	}
	return nil, fmt.Errorf("unsupported ActiveJob argument type %T", a)
}

// rubyNumber is f as an integer when it is whole (Ruby's 2.days has Integer parts).
func rubyNumber(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}

// appendAJHash writes a Hash with string keys, then the marker key listing the keys that
// are Symbols (marker ajSymbolKeys) or keywords (ajRuby2Kw); "" lists none under
// _aj_symbol_keys, as Rails does for a String-keyed Hash.
func appendAJHash(buf []byte, m map[string]any, marker string, depth int) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if isReservedKey(k) {
			return nil, fmt.Errorf("hash key %q is reserved by ActiveJob", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	buf = append(buf, '{')
	for _, k := range keys {
		buf = jsonwire.AppendString(buf, k)
		buf = append(buf, ':')
		var err error
		if buf, err = appendAJ(buf, m[k], depth+1); err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		buf = append(buf, ',')
	}
	if marker == "" {
		return append(buf, `"_aj_symbol_keys":[]}`...), nil
	}
	buf = jsonwire.AppendString(buf, marker)
	buf = append(buf, ":["...)
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = jsonwire.AppendString(buf, k)
	}
	return append(buf, "]}"...), nil
}

// PushActiveJob enqueues a job that a Rails app runs with its ActiveJob class jobClass
// (perform_later's equivalent), on queue ("default" when empty). args are encoded with
// EncodeAJArguments; end them with Keywords for keyword arguments. The payload is what
// Rails 6.1's Sidekiq adapter writes: class ActiveJob::QueueAdapters::SidekiqAdapter::
// JobWrapper (which every Sidekiq version with the adapter loaded runs), "wrapped"
// jobClass, and args[0] the ActiveJob envelope (new job_id, executions 0, locale "en").
// opts are Client.Push options (In and At schedule the job; do not pass Queue, use queue).
// It returns the Sidekiq jid.
func PushActiveJob(ctx context.Context, client *sidekiq.Client, jobClass, queue string, args []any, opts ...sidekiq.PushOption) (string, error) {
	job, err := NewActiveJob(jobClass, queue, args)
	if err != nil {
		return "", err
	}
	return client.PushJob(ctx, job, opts...)
}

// NewActiveJob builds the job PushActiveJob pushes, for PushJob, PushBulk-like loops or an
// outbox.
func NewActiveJob(jobClass, queue string, args []any) (*sidekiq.Job, error) {
	if jobClass == "" {
		return nil, errors.New("middleware: ActiveJob class is empty")
	}
	if queue == "" {
		queue = "default"
	}
	arguments, err := EncodeAJArguments(args)
	if err != nil {
		return nil, err
	}
	id, err := uuidV4()
	if err != nil {
		return nil, err
	}
	buf := []byte(`[{"job_class":`)
	buf = jsonwire.AppendString(buf, jobClass)
	buf = append(buf, `,"job_id":`...)
	buf = jsonwire.AppendString(buf, id)
	buf = append(buf, `,"provider_job_id":null,"queue_name":`...)
	buf = jsonwire.AppendString(buf, queue)
	buf = append(buf, `,"priority":null,"arguments":`...)
	buf = append(buf, arguments...)
	buf = append(buf, `,"executions":0,"exception_executions":{},"locale":"en","timezone":null,"enqueued_at":`...)
	buf = jsonwire.AppendString(buf, time.Now().UTC().Format(ajEnqueuedAtFm))
	buf = append(buf, "}]"...)
	return &sidekiq.Job{
		Class:   sidekiq.ActiveJobWrapperClass,
		Wrapped: jobClass,
		Queue:   queue,
		Args:    buf,
	}, nil
}

// uuidV4 returns a random (version 4) UUID, as ActiveJob's job_id.
func uuidV4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// gidParts splits "gid://app/Model/id" into its three parts ("" when malformed).
func (g GlobalID) gidParts() (app, model, id string) {
	rest, ok := strings.CutPrefix(string(g), "gid://")
	if !ok {
		return "", "", ""
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		return "", "", ""
	}
	id, _, _ = strings.Cut(parts[2], "?") // drop GlobalID params
	return parts[0], parts[1], id
}

// App returns the application part of the URI ("app" in gid://app/Model/42).
func (g GlobalID) App() string { a, _, _ := g.gidParts(); return a }

// Model returns the model class name ("Model" in gid://app/Model/42).
func (g GlobalID) Model() string { _, m, _ := g.gidParts(); return m }

// ID returns the record id ("42" in gid://app/Model/42).
func (g GlobalID) ID() string { _, _, id := g.gidParts(); return id }
