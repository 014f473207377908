package bus

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// queue-bus compares an attribute with a filter as Ruby strings: the attribute as Ruby's
// JSON.parse decodes it, then to_s. This file reproduces that for any JSON value, so a Go
// driver matches exactly the events a Ruby driver matches. Strings, integers, floats,
// booleans and null are exact; arrays and objects become Ruby 3.1's inspect form
// ("[1, \"a\", nil]", "{\"a\"=>1}"), with the set of characters Ruby escapes in strings
// approximated by Unicode categories.

// rubyToS returns Ruby's value.to_s for the JSON value raw; missing (raw == nil) and null
// give "".
func rubyToS(raw []byte) string {
	switch jsonwire.KindOf(raw) {
	case jsonwire.Invalid, jsonwire.Null:
		return ""
	case jsonwire.String:
		s, err := jsonwire.Unquote(raw)
		if err != nil {
			return ""
		}
		return s
	case jsonwire.Bool:
		return string(raw)
	case jsonwire.Number:
		return rubyNumber(string(raw))
	}
	var b strings.Builder
	rubyInspect(&b, raw)
	return b.String()
}

// isNull reports whether raw is absent or JSON null (Ruby's nil).
func isNull(raw []byte) bool {
	k := jsonwire.KindOf(raw)
	return k == jsonwire.Invalid || k == jsonwire.Null
}

// rubyNumber formats a JSON number as Ruby prints what JSON.parse made of it: an Integer
// (any size) when it has no fraction or exponent, a Float otherwise.
func rubyNumber(num string) string {
	if !strings.ContainsAny(num, ".eE") {
		n, ok := new(big.Int).SetString(num, 10)
		if !ok {
			return num
		}
		return n.String() // "-0" is 0
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !math.IsInf(f, 0) {
		return num
	}
	return rubyFloat(f)
}

// rubyFloat is Ruby's Float#to_s: the shortest digits that read back as f, in fixed
// notation when the decimal exponent is in [-4, 15), else as d.ddde±XX; always with a
// fractional part.
func rubyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // "-1.2345e+06"
	neg := e[0] == '-'
	if neg {
		e = e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp >= -4 && exp < 15 {
		if exp >= 0 {
			if len(digits) <= exp+1 {
				out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
			} else {
				out = digits[:exp+1] + "." + digits[exp+1:]
			}
		} else {
			out = "0." + strings.Repeat("0", -exp-1) + digits
		}
	} else {
		frac := digits[1:]
		if frac == "" {
			frac = "0"
		}
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		es := strconv.Itoa(exp)
		if len(es) < 2 {
			es = "0" + es
		}
		out = digits[:1] + "." + frac + "e" + sign + es
	}
	if neg {
		return "-" + out
	}
	return out
}

// rubyInspect writes Ruby's inspect of the JSON value raw.
func rubyInspect(b *strings.Builder, raw []byte) {
	switch jsonwire.KindOf(raw) {
	case jsonwire.Null, jsonwire.Invalid:
		b.WriteString("nil")
	case jsonwire.Bool:
		b.Write(raw)
	case jsonwire.Number:
		b.WriteString(rubyNumber(string(raw)))
	case jsonwire.String:
		s, _ := jsonwire.Unquote(raw)
		rubyInspectString(b, s)
	case jsonwire.Array:
		b.WriteByte('[')
		first := true
		_ = eachArg(raw, func(v []byte) bool {
			if !first {
				b.WriteString(", ")
			}
			first = false
			rubyInspect(b, v)
			return true
		})
		b.WriteByte(']')
	case jsonwire.Object:
		b.WriteByte('{')
		first := true
		_ = jsonwire.ScanObject(raw, func(k, v []byte) error {
			if !first {
				b.WriteString(", ")
			}
			first = false
			key, _ := jsonwire.Unquote(k)
			rubyInspectString(b, key)
			b.WriteString("=>")
			rubyInspect(b, v)
			return nil
		})
		b.WriteByte('}')
	}
}

// rubyInspectString writes Ruby's String#inspect of a UTF-8 string.
func rubyInspectString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\x`)
			b.WriteString(strings.ToUpper(strconv.FormatUint(uint64(s[i]), 16)))
			i++
			continue
		}
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		case '\v':
			b.WriteString(`\v`)
		case '\b':
			b.WriteString(`\b`)
		case '\a':
			b.WriteString(`\a`)
		case 0x1b:
			b.WriteString(`\e`)
		case '#':
			if i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '$' || s[i+1] == '@') {
				b.WriteByte('\\')
			}
			b.WriteByte('#')
		default:
			if rubyEscapes(r) {
				b.WriteString(`\u`)
				h := strings.ToUpper(strconv.FormatUint(uint64(r), 16))
				if r > 0xffff {
					b.WriteString("{" + h + "}")
				} else {
					b.WriteString(strings.Repeat("0", 4-len(h)) + h)
				}
			} else {
				b.WriteRune(r)
			}
		}
		i += size
	}
	b.WriteByte('"')
}

// rubyEscapes approximates which characters Ruby's inspect writes as \u escapes: ASCII
// controls, DEL, the line and paragraph separators, and unassigned code points.
func rubyEscapes(r rune) bool {
	if r < 0x20 || r == 0x7f {
		return true
	}
	if r < 0x80 {
		return false
	}
	if r == 0x2028 || r == 0x2029 {
		return true
	}
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs,
		unicode.Cc, unicode.Cf, unicode.Co)
}

// rubyStrip is Ruby's String#strip: it removes leading and trailing NUL, tab, line feed,
// vertical tab, form feed, carriage return and space.
func rubyStrip(s string) string {
	return strings.Trim(s, "\x00\t\n\v\f\r ")
}
