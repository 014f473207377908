package activejob

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// DecodeArguments decodes an ActiveJob "arguments" array. A keyword-arguments hash is
// returned as Keywords.
func DecodeArguments(raw json.RawMessage) ([]any, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, err
	}
	out := make([]any, len(raws))
	for i, r := range raws {
		v, kw, err := DecodeArgument(r)
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

// DecodeArgument decodes one serialized argument; kw reports a keyword-arguments hash
// (the "_aj_ruby2_keywords" marker), returned as a map[string]any.
func DecodeArgument(raw json.RawMessage) (v any, kw bool, err error) {
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
			if out[i], _, err = DecodeArgument(r); err != nil {
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
		v, _, err := DecodeArgument(r)
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
		parts, _, err := DecodeArgument(m["parts"])
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
		if r.Begin, _, err = DecodeArgument(m["begin"]); err != nil {
			return nil, err
		}
		if r.End, _, err = DecodeArgument(m["end"]); err != nil {
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
		v, _, err := DecodeArgument(r)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		s.Fields[k] = v
	}
	return s, nil
}
