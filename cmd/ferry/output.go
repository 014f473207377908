package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// table writes aligned columns. Every cell goes through clean, since most come from job
// payloads that anyone who can push a job controls.
type table struct {
	tw    *tabwriter.Writer
	width []int // per-column cut, 0 = none
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(headers...)
	return t
}

// cut sets the widest each column may be (0: no limit).
func (t *table) cut(widths ...int) *table { t.width = widths; return t }

func (t *table) row(cells ...string) {
	for i, c := range cells {
		max := 0
		if i < len(t.width) {
			max = t.width[i]
		}
		cells[i] = clean(c, max)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() { _ = t.tw.Flush() }

// clean makes s safe and short for a terminal cell: control characters (escape sequences
// a payload could carry to move the cursor or retitle the window) and tabs become "?",
// line breaks become "⏎", invalid UTF-8 becomes "?", and with max > 0 the text is cut to
// max runes with "…".
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if max > 0 && n == max-1 && i < len(s) {
			b.WriteString("…")
			return b.String()
		}
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteByte('?')
		case r == '\n':
			b.WriteString("⏎")
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// human formats a duration the way people read one: 850ms, 12s, 3m12s, 2h05m, 4d03h.
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, (d%time.Minute)/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	default:
		return fmt.Sprintf("%dd%02dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	}
}

// relative says when t is from now: "3m12s ago", "in 2h05m", "-" for a zero time.
func relative(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if t.After(now) {
		return "in " + human(t.Sub(now))
	}
	return human(now.Sub(t)) + " ago"
}

// count writes n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// plural picks the word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// jsonTime is a time in JSON: RFC 3339 in UTC with nanoseconds, null when zero.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(tt.UTC().Format(time.RFC3339Nano))
}

// seconds is a duration in JSON: float seconds.
type seconds time.Duration

func (s seconds) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(s).Seconds(), 'f', -1, 64)), nil
}

// writeJSON writes v as one line of JSON, without HTML escaping.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonArray streams a JSON array, one element per line, so a listing of a million
// entries never sits in memory.
type jsonArray struct {
	w io.Writer
	n int
}

func newJSONArray(w io.Writer) *jsonArray { return &jsonArray{w: w} }

func (a *jsonArray) add(v any) error {
	sep := ",\n"
	if a.n == 0 {
		sep = "[\n"
	}
	if _, err := io.WriteString(a.w, sep); err != nil {
		return err
	}
	a.n++
	var b strings.Builder
	if err := writeJSON(&b, v); err != nil {
		return err
	}
	_, err := io.WriteString(a.w, strings.TrimSuffix(b.String(), "\n"))
	return err
}

func (a *jsonArray) close() error {
	if a.n == 0 {
		_, err := io.WriteString(a.w, "[]\n")
		return err
	}
	_, err := io.WriteString(a.w, "\n]\n")
	return err
}

// joinCut joins names for a message, at most ten of them.
func joinCut(names []string) string {
	const max = 10
	if len(names) <= max {
		return strings.Join(cleanAll(names), ", ")
	}
	return strings.Join(cleanAll(names[:max]), ", ") + fmt.Sprintf(" and %d more", len(names)-max)
}

func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clean(s, 80)
	}
	return out
}

// UnmarshalJSON reads float seconds (ferry's own --json output, for scripts in Go).
func (s *seconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*s = seconds(time.Duration(f * float64(time.Second)))
	return nil
}

// UnmarshalJSON reads an RFC 3339 time or null.
func (t *jsonTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = jsonTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	tt, err := time.Parse(time.RFC3339Nano, s)
	*t = jsonTime(tt)
	return err
}
