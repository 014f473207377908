package bus

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// errUnsupportedRegexp is wrapped by the error of a Ruby pattern RE2 cannot express.
var errUnsupportedRegexp = errors.New("bus: Ruby regexp feature not supported by Go's regexp")

// compileRubyRegexp compiles the source of a Ruby (Onigmo) regular expression for Go's
// regexp package, keeping Ruby's meaning where the syntaxes differ:
//
//   - ^ and $ match at line boundaries, as they always do in Ruby (Go's (?m));
//   - Ruby's m flag (dot matches newline) is Go's s flag, in (?m-ix:...) groups too;
//   - \h, \H, \s (which in Ruby includes \v), \Z and {,n} are rewritten;
//   - (?#...) comments are dropped.
//
// Nested character classes are flattened into one (a union). Lookaround, atomic groups,
// back references, \G, \K, \R, \X, negated nested classes, class intersection (&&) and
// the x (extended) flag have no RE2 equivalent: they give an error wrapping
// errUnsupportedRegexp. Anything else RE2 rejects gives its own error.
func compileRubyRegexp(src string) (*regexp.Regexp, error) {
	tr, err := translateRubyRegexp(src)
	if err != nil {
		return nil, err
	}
	return regexp.Compile("(?m)" + tr)
}

func unsupported(what string) error {
	return fmt.Errorf("%w: %s", errUnsupportedRegexp, what)
}

func translateRubyRegexp(src string) (string, error) {
	var b strings.Builder
	b.Grow(len(src) + 8)
	inClass := false
	nested := 0 // depth of nested classes inside the current one
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\\':
			if i+1 >= len(src) {
				return "", errors.New("bus: regexp ends with a backslash")
			}
			i++
			if err := translateEscape(&b, src[i], inClass); err != nil {
				return "", err
			}
		case inClass:
			switch {
			case c == ']' && nested > 0:
				nested-- // the end of a nested class, flattened
				continue
			case c == ']':
				inClass = false
			case c == '[' && i+1 < len(src) && src[i+1] == ':':
				// A POSIX bracket expression such as [:alpha:]: copy through its "]".
				end := strings.Index(src[i:], ":]")
				if end < 0 {
					return "", unsupported("unterminated POSIX bracket")
				}
				b.WriteString(src[i : i+end+2])
				i += end + 1
				continue
			case c == '[' && i+1 < len(src) && src[i+1] == '^':
				return "", unsupported("negated nested character class")
			case c == '[':
				// A nested class is a union: [a-c[xy]] is [a-cxy].
				nested++
				continue
			case c == '&' && i+1 < len(src) && src[i+1] == '&':
				return "", unsupported("character class intersection (&&)")
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal in both dialects.
			if i+1 < len(src) && src[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(src) && src[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case c == '(' && i+1 < len(src) && src[i+1] == '?':
			n, err := translateGroup(&b, src[i:])
			if err != nil {
				return "", err
			}
			i += n - 1
		case c == '{' && i+1 < len(src) && src[i+1] == ',':
			// Ruby's {,n} is {0,n}; RE2 reads "{," as literal text.
			j := i + 2
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j > i+2 && j < len(src) && src[j] == '}' {
				b.WriteString("{0," + src[i+2:j] + "}")
				i = j
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	if inClass {
		return "", errors.New("bus: regexp has an unterminated character class")
	}
	return b.String(), nil
}

// translateEscape writes the RE2 form of the escape \c.
func translateEscape(b *strings.Builder, c byte, inClass bool) error {
	const space = `\t\n\v\f\r `
	switch c {
	case 'h':
		if inClass {
			b.WriteString(`0-9a-fA-F`)
		} else {
			b.WriteString(`[0-9a-fA-F]`)
		}
	case 'H':
		if inClass {
			return unsupported(`\H in a character class`)
		}
		b.WriteString(`[^0-9a-fA-F]`)
	case 's':
		if inClass {
			b.WriteString(space)
		} else {
			b.WriteString(`[` + space + `]`)
		}
	case 'S':
		if inClass {
			b.WriteString(`\S`) // RE2's \S also matches \v; Ruby's does not
		} else {
			b.WriteString(`[^` + space + `]`)
		}
	case 'Z':
		if inClass {
			return unsupported(`\Z in a character class`)
		}
		b.WriteString(`(?:\n?\z)`)
	case 'G', 'K', 'R', 'X', 'k', 'g':
		return unsupported(`\` + string(c))
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if inClass {
			return unsupported("octal escape in a character class")
		}
		return unsupported("back reference")
	default:
		b.WriteByte('\\')
		b.WriteByte(c)
	}
	return nil
}

// translateGroup writes the RE2 form of the group opening at the start of s, which begins
// with "(?", and returns how many bytes of s it consumed.
func translateGroup(b *strings.Builder, s string) (int, error) {
	rest := s[2:]
	switch {
	case strings.HasPrefix(rest, "#"):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return 0, errors.New("bus: unterminated (?# comment")
		}
		return 2 + end + 1, nil
	case strings.HasPrefix(rest, "="), strings.HasPrefix(rest, "!"):
		return 0, unsupported("lookahead")
	case strings.HasPrefix(rest, "<="), strings.HasPrefix(rest, "<!"):
		return 0, unsupported("lookbehind")
	case strings.HasPrefix(rest, ">"):
		return 0, unsupported("atomic group")
	case strings.HasPrefix(rest, "~"):
		return 0, unsupported("absence operator")
	case strings.HasPrefix(rest, "<"), strings.HasPrefix(rest, "P<"), strings.HasPrefix(rest, ":"):
		b.WriteString("(?")
		return 2, nil
	case strings.HasPrefix(rest, "'"):
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return 0, errors.New("bus: unterminated group name")
		}
		b.WriteString("(?P<" + rest[1:1+end] + ">")
		return 2 + 1 + end + 1, nil
	}
	// Option flags: (?imx-imx) or (?imx-imx:...).
	var on, off strings.Builder
	neg := false
	for j := 0; j < len(rest); j++ {
		switch c := rest[j]; c {
		case 'i', 'm', 'x':
			dst := &on
			if neg {
				dst = &off
			}
			switch c {
			case 'i':
				dst.WriteByte('i')
			case 'm':
				dst.WriteByte('s')
			case 'x':
				if !neg {
					return 0, unsupported("the x (extended) flag")
				}
			}
		case '-':
			if neg {
				return 0, errors.New("bus: bad regexp option group")
			}
			neg = true
		case ':', ')':
			flags := on.String()
			if off.Len() > 0 {
				flags += "-" + off.String()
			}
			switch {
			case flags != "":
				b.WriteString("(?" + flags + string(c))
			case c == ':':
				b.WriteString("(?:")
			}
			return 2 + j + 1, nil
		default:
			return 0, fmt.Errorf("bus: unknown regexp group (?%c", c)
		}
	}
	return 0, errors.New("bus: unterminated regexp option group")
}
