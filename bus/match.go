package bus

import (
	"regexp"
	"sort"
	"strings"
)

// Match is a subscription's filter: attribute name → expected value. An event matches when
// every entry matches; an empty Match matches nothing. Values are compared as queue-bus
// compares them:
//
//   - one of the special values Key, Blank, Empty, Nil, Value, Present tests presence or
//     blankness (see each constant);
//   - any other value matches an attribute whose Ruby string form (to_s) equals it;
//   - failing that, the value is a Ruby regular expression anchored at both ends
//     ("user_.*" matches "user_created"; "." matches any character), unless it is in
//     Ruby's Regexp#to_s form "(?-mix:...)", as Regexp makes it, which is searched for
//     anywhere in the value, unanchored.
//
// Subscribe(eventType, ...) is SubscribeMatch(eventType, Match{"bus_event_type": eventType}),
// so an event type is a pattern too.
type Match map[string]string

// The special values of a Match, stored in Redis as queue-bus stores Ruby's symbols
// (:key, :blank, ...).
const (
	// Key matches when the event has the attribute, whatever its value (null included).
	Key = specialPrefix + "key"
	// Blank matches a missing, null, empty or whitespace-only attribute.
	Blank = specialPrefix + "blank"
	// Empty matches an attribute present and empty as a string ("" but not null).
	Empty = specialPrefix + "empty"
	// Nil matches a missing or null attribute.
	Nil = specialPrefix + "nil"
	// Value matches an attribute present and not null (an empty string included).
	Value = specialPrefix + "value"
	// Present matches an attribute that is not blank.
	Present = specialPrefix + "present"

	specialPrefix = "bus_special_value_"
)

// Regexp returns pattern as queue-bus stores a Ruby Regexp (Regexp#to_s, "(?-mix:...)"):
// unlike a plain Match value, it is not anchored, so Regexp("pro") matches "pro_plan".
// The pattern is a Ruby pattern: Go drivers translate it (see the package documentation
// for what they cannot).
func Regexp(pattern string) string { return "(?-mix:" + pattern + ")" }

// matcher is a compiled Match.
type matcher struct {
	filters []filter
}

type filter struct {
	key   string
	value string         // the stored value, as a Ruby string
	re    *regexp.Regexp // nil when the value does not compile (then only equality matches)
	reErr error
}

// compileMatch compiles filters (attribute → stored value). Values that are not valid
// patterns keep only their literal meaning, as in Ruby, where a failing Regexp.new is
// rescued as "no match"; reErr records why, so drivers can warn.
func compileMatch(filters map[string]string) *matcher {
	keys := make([]string, 0, len(filters))
	for k := range filters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := &matcher{filters: make([]filter, 0, len(keys))}
	for _, k := range keys {
		f := filter{key: k, value: filters[k]}
		if f.value != "" && !isSpecial(f.value) {
			src := "^" + f.value + "$"
			if strings.HasPrefix(f.value, "(?-mix:") {
				src = f.value
			}
			f.re, f.reErr = compileRubyRegexp(src)
		}
		m.filters = append(m.filters, f)
	}
	return m
}

// isSpecial reports whether v is one of the special values.
func isSpecial(v string) bool {
	switch v {
	case Key, Blank, Empty, Nil, Value, Present:
		return true
	}
	return false
}

// badPattern returns the first filter whose pattern Go cannot compile, if any.
func (m *matcher) badPattern() (key string, err error) {
	for _, f := range m.filters {
		if f.reErr != nil {
			return f.key, f.reErr
		}
	}
	return "", nil
}

// matches reports whether the event's attributes pass every filter (queue-bus's
// Matcher#matches?).
func (m *matcher) matches(a *attrs) bool {
	if len(m.filters) == 0 || a == nil {
		return false
	}
	for i := range m.filters {
		if !m.filters[i].match(a) {
			return false
		}
	}
	return true
}

func (f *filter) match(a *attrs) bool {
	if f.value == "" {
		return false
	}
	raw, present := a.get(f.key)
	switch f.value {
	case Key:
		return present
	case Blank:
		return rubyStrip(rubyToS(raw)) == ""
	case Empty:
		return !isNull(raw) && rubyToS(raw) == ""
	case Nil:
		return isNull(raw)
	case Value:
		return !isNull(raw)
	case Present:
		return rubyStrip(rubyToS(raw)) != ""
	}
	given := rubyToS(raw)
	if given == f.value {
		return true
	}
	return f.re != nil && f.re.MatchString(given)
}
