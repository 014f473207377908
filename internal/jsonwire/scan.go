package jsonwire

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MaxDepth is how deeply arrays and objects may nest before the scanner gives up. Ruby's
// JSON.parse stops at 100 by default; we allow more so that nothing Ruby wrote is refused.
const MaxDepth = 1000

// SyntaxError reports malformed JSON and the byte offset where it was noticed.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

func syntaxErr(off int, format string, a ...any) error {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, a...)}
}

// Kind is the type of a JSON value, read from its first byte.
type Kind uint8

// The kinds of JSON value.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "invalid"
}

// KindOf returns the kind of a value that SkipValue or ScanObject accepted.
func KindOf(v []byte) Kind {
	if len(v) == 0 {
		return Invalid
	}
	switch c := v[0]; {
	case c == 'n':
		return Null
	case c == 't' || c == 'f':
		return Bool
	case c == '"':
		return String
	case c == '[':
		return Array
	case c == '{':
		return Object
	case c == '-' || (c >= '0' && c <= '9'):
		return Number
	}
	return Invalid
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// SkipValue validates the JSON value that starts at data[i] (after optional space) and
// returns the start and end offsets of the value itself.
func SkipValue(data []byte, i int) (start, end int, err error) {
	i = SkipSpace(data, i)
	end, err = skip(data, i, 0)
	return i, end, err
}

func skip(data []byte, i, depth int) (int, error) {
	if i >= len(data) {
		return i, syntaxErr(i, "unexpected end of input")
	}
	switch c := data[i]; {
	case c == '"':
		return skipString(data, i)
	case c == '{':
		return skipObject(data, i, depth+1)
	case c == '[':
		return skipArray(data, i, depth+1)
	case c == 't':
		return skipLiteral(data, i, "true")
	case c == 'f':
		return skipLiteral(data, i, "false")
	case c == 'n':
		return skipLiteral(data, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(data, i)
	default:
		return i, syntaxErr(i, "unexpected character %q", c)
	}
}

func skipLiteral(data []byte, i int, lit string) (int, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return i, syntaxErr(i, "invalid literal, expected %s", lit)
	}
	return i + len(lit), nil
}

func skipNumber(data []byte, i int) (int, error) {
	start := i
	if data[i] == '-' {
		i++
	}
	if i >= len(data) {
		return i, syntaxErr(start, "truncated number")
	}
	switch {
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		return i, syntaxErr(i, "invalid number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		d := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == d {
			return i, syntaxErr(i, "invalid number: no digits after the decimal point")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		d := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == d {
			return i, syntaxErr(i, "invalid number: no digits in the exponent")
		}
	}
	return i, nil
}

func skipString(data []byte, i int) (int, error) {
	start := i
	i++
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
			if i >= len(data) {
				return i, syntaxErr(start, "unterminated string")
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(data)-i < 5 {
					return i, syntaxErr(i, "truncated \\u escape")
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return i, syntaxErr(i, "invalid \\u escape")
					}
				}
				i += 5
			default:
				return i, syntaxErr(i, "invalid escape \\%c", data[i])
			}
		case c < 0x20:
			return i, syntaxErr(i, "control character in string")
		default:
			i++
		}
	}
	return i, syntaxErr(start, "unterminated string")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func skipArray(data []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(i, "nested too deeply")
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		i, err = skip(data, SkipSpace(data, i), depth)
		if err != nil {
			return i, err
		}
		i = SkipSpace(data, i)
		if i >= len(data) {
			return i, syntaxErr(i, "unterminated array")
		}
		switch data[i] {
		case ',':
			i++
		case ']':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected ',' or ']' in array, got %q", data[i])
		}
	}
}

func skipObject(data []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(i, "nested too deeply")
	}
	return scanObject(data, i, depth, nil)
}

// ScanObject walks the top-level object in data, calling fn with each member's raw key
// (quotes included) and raw value. It rejects anything but exactly one object, optionally
// surrounded by white space. fn may return an error to stop the walk.
func ScanObject(data []byte, fn func(key, value []byte) error) error {
	i := SkipSpace(data, 0)
	if i >= len(data) {
		return syntaxErr(i, "empty input")
	}
	if data[i] != '{' {
		k := KindOf(data[i:])
		if k == Invalid {
			return syntaxErr(i, "unexpected character %q", data[i])
		}
		return &SyntaxError{Offset: i, Msg: "top-level value is " + k.String() + ", not an object"}
	}
	end, err := scanObject(data, i, 1, fn)
	if err != nil {
		return err
	}
	if j := SkipSpace(data, end); j != len(data) {
		return syntaxErr(j, "unexpected data after the top-level object")
	}
	return nil
}

func scanObject(data []byte, i, depth int, fn func(key, value []byte) error) (int, error) {
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	for {
		i = SkipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return i, syntaxErr(i, "expected a string key in object")
		}
		ks := i
		ke, err := skipString(data, i)
		if err != nil {
			return ke, err
		}
		i = SkipSpace(data, ke)
		if i >= len(data) || data[i] != ':' {
			return i, syntaxErr(i, "expected ':' after object key")
		}
		vs := SkipSpace(data, i+1)
		ve, err := skip(data, vs, depth)
		if err != nil {
			return ve, err
		}
		if fn != nil {
			if err := fn(data[ks:ke], data[vs:ve]); err != nil {
				return ve, err
			}
		}
		i = SkipSpace(data, ve)
		if i >= len(data) {
			return i, syntaxErr(i, "unterminated object")
		}
		switch data[i] {
		case ',':
			i++
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected ',' or '}' in object, got %q", data[i])
		}
	}
}

// Unquote returns the string a raw JSON string (quotes included) denotes. Raw must have
// been accepted by the scanner.
func Unquote(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", syntaxErr(0, "not a string")
	}
	inner := raw[1 : len(raw)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// Valid reports whether data is exactly one JSON value.
func Valid(data []byte) bool {
	_, end, err := SkipValue(data, 0)
	return err == nil && SkipSpace(data, end) == len(data)
}
