package sidekiq

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// EncodeArgs encodes Go values as a Sidekiq "args" array, so that Ruby receives the same
// types Go sent: floats always carry a fraction (Go's 3.0 arrives as Ruby's 3.0, not 3),
// integers of any size stay exact, strings are not HTML-escaped, maps are written with
// sorted keys. json.Number and json.RawMessage are written as they are. Values of other
// types (structs) go through encoding/json; a whole-valued float field inside a struct then
// arrives in Ruby as an Integer, so prefer maps for float data. NaN and infinities are
// errors, as they are for Ruby's JSON.generate.
func EncodeArgs(args []any) (json.RawMessage, error) {
	buf := make([]byte, 0, 16*len(args)+2)
	buf = append(buf, '[')
	for i, a := range args {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		buf, err = appendArg(buf, reflect.ValueOf(a), 0)
		if err != nil {
			return nil, fmt.Errorf("sidekiq: arg %d: %w", i, err)
		}
	}
	return append(buf, ']'), nil
}

var (
	numberType        = reflect.TypeFor[json.Number]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func appendArg(buf []byte, v reflect.Value, depth int) ([]byte, error) {
	if depth > 200 {
		return buf, fmt.Errorf("nested too deeply (a cycle?)")
	}
	if !v.IsValid() {
		return append(buf, "null"...), nil
	}
	switch v.Type() {
	case numberType:
		s := v.String()
		if s == "" || !jsonwire.Valid([]byte(s)) {
			return buf, fmt.Errorf("invalid json.Number %q", s)
		}
		return append(buf, s...), nil
	case rawMessageType:
		raw := v.Bytes()
		if !jsonwire.Valid(raw) {
			return buf, fmt.Errorf("invalid json.RawMessage")
		}
		return append(buf, raw...), nil
	}
	if v.Kind() != reflect.Pointer && v.Kind() != reflect.Interface && v.Type().Implements(jsonMarshalerType) {
		return appendViaJSON(buf, v.Interface())
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return append(buf, "null"...), nil
		}
		if v.Kind() == reflect.Pointer && v.Type().Implements(jsonMarshalerType) {
			return appendViaJSON(buf, v.Interface())
		}
		return appendArg(buf, v.Elem(), depth+1)
	case reflect.Bool:
		return strconv.AppendBool(buf, v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(buf, v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(buf, v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return buf, fmt.Errorf("%v cannot be encoded in JSON", f)
		}
		if v.Kind() == reflect.Float32 {
			// Shortest float32 form, so 0.1f arrives as 0.1 rather than 0.10000000149011612.
			f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
		}
		return jsonwire.AppendFloat(buf, f), nil
	case reflect.String:
		return jsonwire.AppendString(buf, v.String()), nil
	case reflect.Slice:
		if v.IsNil() {
			return append(buf, "null"...), nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return appendViaJSON(buf, v.Interface()) // base64, as encoding/json does
		}
		fallthrough
	case reflect.Array:
		buf = append(buf, '[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendArg(buf, v.Index(i), depth+1); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case reflect.Map:
		if v.IsNil() {
			return append(buf, "null"...), nil
		}
		return appendMap(buf, v, depth)
	}
	return appendViaJSON(buf, v.Interface())
}

func appendMap(buf []byte, v reflect.Value, depth int) ([]byte, error) {
	type kv struct {
		k string
		v reflect.Value
	}
	entries := make([]kv, 0, v.Len())
	iter := v.MapRange()
	for iter.Next() {
		k, err := mapKeyString(iter.Key())
		if err != nil {
			return buf, err
		}
		entries = append(entries, kv{k, iter.Value()})
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].k < entries[b].k })
	buf = append(buf, '{')
	for i, e := range entries {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = jsonwire.AppendString(buf, e.k)
		buf = append(buf, ':')
		var err error
		if buf, err = appendArg(buf, e.v, depth+1); err != nil {
			return buf, err
		}
	}
	return append(buf, '}'), nil
}

func mapKeyString(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if k.Type().Implements(textMarshalerType) {
		b, err := k.Interface().(encoding.TextMarshaler).MarshalText()
		return string(b), err
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("unsupported map key type %s", k.Type())
}

func appendViaJSON(buf []byte, v any) ([]byte, error) {
	raw, err := marshalNoEscape(v)
	if err != nil {
		return buf, err
	}
	return append(buf, raw...), nil
}
