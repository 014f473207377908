package activejob

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// EncodeArguments serializes Go values as ActiveJob "arguments", the way Rails 6.1
// serializes the corresponding Ruby values, so the Ruby job receives: nil, bool, integers
// (every Go integer type and json.Number), floats (always with a fraction, so Ruby sees a
// Float), string, Decimal (as a String), slices and arrays (Array), map[string]V (a Hash
// with String keys), SymbolHash (Symbol keys), Keywords (keyword arguments), Symbol,
// GlobalID (the record, loaded by Rails), time.Time (Time), Date, Duration, Module and Range
// (Rails 7.0+). Any other type is an error, as is a map key ActiveJob reserves ("_aj_…").
func EncodeArguments(args []any) (json.RawMessage, error) {
	buf := []byte{'['}
	for i, a := range args {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendAJ(buf, a, 0); err != nil {
			return nil, fmt.Errorf("activejob: argument %d: %w", i, err)
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
