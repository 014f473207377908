package promferry

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// OtherLabel is the label value that stands for every class (or queue, or Redis operation)
// that does not get a value of its own: a class with no handler, one past MaxClasses, an
// invalid payload.
const OtherLabel = "other"

// MaxLabelLength is the longest label value, in bytes; longer names are cut (on a character
// boundary). Prometheus keeps every distinct label value in memory, so a payload must not be
// able to choose one of any length.
const MaxLabelLength = 100

// labelSet hands out the values of one label. With an allowlist, only listed names get
// their own value; without one, the first max distinct names do. Everything else is
// OtherLabel. Every value is valid UTF-8 (client_golang panics on anything else) and at most
// MaxLabelLength bytes long. Safe for concurrent use.
type labelSet struct {
	mu      sync.Mutex
	allowed map[string]bool   // nil: admit on first sight, up to max
	seen    map[string]string // raw name -> label value, at most max entries
	max     int
}

func newLabelSet(max int, allowed []string) *labelSet {
	l := &labelSet{seen: map[string]string{}, max: max}
	l.allow(allowed...)
	return l
}

// allow adds names to the allowlist (creating it).
func (l *labelSet) allow(names ...string) {
	if len(names) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.allowed == nil {
		l.allowed = map[string]bool{}
	}
	for _, n := range names {
		l.allowed[n] = true
	}
}

// value returns the label value for name.
func (l *labelSet) value(name string) string {
	if name == "" {
		return OtherLabel
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.seen[name]; ok {
		return v
	}
	if l.allowed != nil && !l.allowed[name] {
		return OtherLabel
	}
	if l.allowed == nil && len(l.seen) >= l.max {
		return OtherLabel
	}
	v := labelValue(name)
	if len(l.seen) < max(l.max, len(l.allowed)) {
		l.seen[name] = v
	}
	return v
}

// labelValue makes s a safe label value: valid UTF-8, at most MaxLabelLength bytes.
func labelValue(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= MaxLabelLength {
		return s
	}
	cut := MaxLabelLength
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
