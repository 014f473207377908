package periodic

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/ferryhq/ferry/internal/logcap"
)

// ErrBadSpec is matched (errors.Is) by every error about a schedule that cannot be parsed.
var ErrBadSpec = errors.New("periodic: bad spec")

// SpecError reports a schedule that cannot be parsed, and why. It matches ErrBadSpec.
type SpecError struct {
	// Spec is the schedule as given.
	Spec string
	// Reason says what is wrong with it.
	Reason string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("periodic: bad spec %q: %s", logcap.Cut(e.Spec, 128), e.Reason)
}

// Is matches ErrBadSpec.
func (e *SpecError) Is(target error) bool { return target == ErrBadSpec }

// maxSpecLen bounds a spec: a cron expression is a few dozen bytes, and one read from
// Redis may be anything.
const maxSpecLen = 256

// cronParser reads 5 fields (minute first) or 6 (second first), as sidekiq-cron's fugit
// does, and the descriptors @yearly, @annually, @monthly, @weekly, @daily, @midnight and
// @hourly.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom |
	cron.Month | cron.Dow | cron.Descriptor)

// schedule tells when a job is due. Ticks fall on whole seconds.
type schedule interface {
	// next returns the first tick strictly after t, or the zero time when there is none
	// within five years.
	next(t time.Time) time.Time
}

// cronSchedule is a cron expression in a fixed time zone.
type cronSchedule struct{ spec *cron.SpecSchedule }

// next converts t to the schedule's zone first: robfig reads a schedule in time.Local as
// local to whatever zone t is in.
func (c cronSchedule) next(t time.Time) time.Time { return c.spec.Next(t.In(c.spec.Location)) }

// gridSchedule is "@every d": the multiples of d since the Unix epoch, so every process
// (and every restart) agrees on the ticks, whenever it started.
type gridSchedule struct{ every int64 } // seconds, > 0

func (g gridSchedule) next(t time.Time) time.Time {
	return time.Unix((t.Unix()/g.every+1)*g.every, 0).UTC() // t is after 1970: Unix() floors
}

// parsedSpec is a spec read by parseSpec.
type parsedSpec struct {
	sched schedule
	// loc is the zone the spec named (CRON_TZ=, TZ= or a trailing zone name), or nil.
	loc *time.Location
	// body is the spec without its zone: cron fields or a descriptor.
	body string
	// every is the interval of an @every spec, else 0.
	every time.Duration
}

// parseSpec reads spec the way Ferry and sidekiq-cron both accept it: 5 fields (minute,
// hour, day of month, month, day of week) or 6 (seconds first); a descriptor (@hourly,
// @daily, ..., @every 30s); a time zone as a "CRON_TZ=Zone " or "TZ=Zone " prefix (robfig)
// or as a trailing field (fugit, so sidekiq-cron's "0 3 * * * Europe/Berlin" reads the
// same). Specs naming no zone use def. It never panics, whatever spec holds.
func parseSpec(spec string, def *time.Location) (p parsedSpec, err error) {
	bad := func(format string, args ...any) (parsedSpec, error) {
		return parsedSpec{}, &SpecError{Spec: spec, Reason: fmt.Sprintf(format, args...)}
	}
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		return bad("empty")
	case len(s) > maxSpecLen:
		return bad("longer than %d bytes", maxSpecLen)
	}
	if strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ=") {
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return bad("a time zone and no schedule")
		}
		name := s[strings.IndexByte(s, '=')+1 : i]
		if p.loc, err = loadZone(name); err != nil {
			return bad("%v", err)
		}
		s = strings.TrimSpace(s[i:])
	}
	fields := strings.Fields(s)
	if strings.HasPrefix(s, "@every ") || s == "@every" {
		if len(fields) != 2 {
			return bad("@every takes one duration, as in @every 30s")
		}
		d, err := time.ParseDuration(fields[1])
		switch {
		case err != nil:
			return bad("@every: %v", err)
		case d < time.Second:
			return bad("@every: an interval under one second")
		case d%time.Second != 0:
			return bad("@every: an interval of whole seconds, not %v", d)
		case d > 366*24*time.Hour:
			return bad("@every: an interval over a year")
		}
		if p.loc != nil {
			return bad("@every counts from the Unix epoch and takes no time zone")
		}
		p.every, p.body = d, "@every "+d.String()
		p.sched = gridSchedule{every: int64(d / time.Second)}
		return p, nil
	}
	if n := len(fields); n >= 2 && n != 5 {
		if zone, ok := trailingZone(fields[n-1]); ok {
			if p.loc != nil {
				return bad("two time zones")
			}
			p.loc, fields = zone, fields[:n-1]
		}
	}
	if strings.HasPrefix(s, "@") {
		if len(fields) != 1 {
			return bad("a descriptor such as @daily stands alone; put a zone in CRON_TZ= or Job.Location")
		}
	} else if n := len(fields); n != 5 && n != 6 {
		return bad("expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found %d", n)
	}
	p.body = strings.Join(fields, " ")
	parsed, err := parseCron(p.body)
	if err != nil {
		return bad("%v", err)
	}
	cs, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return bad("not a cron schedule")
	}
	loc := p.loc
	if loc == nil {
		loc = def
	}
	if loc == nil {
		loc = time.Local
	}
	cs.Location = loc
	p.sched = cronSchedule{spec: cs}
	return p, nil
}

// parseCron runs robfig's parser, turning a panic on hostile input into an error.
func parseCron(body string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("unparsable: %v", r)
		}
	}()
	return cronParser.Parse(body)
}

// trailingZone reports whether a spec's last field names a time zone (fugit's form)
// rather than a cron field. Cron fields are digits, *, ?, -, /, commas and month or
// weekday names; a zone name has a letter and is known to the time package.
func trailingZone(field string) (*time.Location, bool) {
	hasLetter := false
	for _, r := range field {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' {
			hasLetter = true
			break
		}
	}
	if !hasLetter || isCronNames(field) {
		return nil, false
	}
	loc, err := loadZone(field)
	return loc, err == nil
}

// isCronNames reports whether field is made of month or weekday names (JAN, mon-fri, ...).
func isCronNames(field string) bool {
	for _, part := range strings.FieldsFunc(strings.ToLower(field), func(r rune) bool {
		return r == ',' || r == '-' || r == '/'
	}) {
		if _, err := strconv.Atoi(part); err == nil || part == "*" || part == "?" {
			continue
		}
		if !cronNames[part] {
			return false
		}
	}
	return true
}

var cronNames = map[string]bool{
	"jan": true, "feb": true, "mar": true, "apr": true, "may": true, "jun": true, "jul": true,
	"aug": true, "sep": true, "oct": true, "nov": true, "dec": true,
	"sun": true, "mon": true, "tue": true, "wed": true, "thu": true, "fri": true, "sat": true,
}

// loadZone loads an IANA zone by name. "Local" and "" are refused: a shared schedule must
// mean the same on every host.
func loadZone(name string) (*time.Location, error) {
	switch {
	case name == "" || name == "Local":
		return nil, fmt.Errorf("time zone %q: name a zone, such as UTC or Europe/Berlin", name)
	case len(name) > 64:
		return nil, errors.New("time zone name longer than 64 bytes")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", logcap.Cut(name, 64))
	}
	return loc, nil
}

// descriptorFields are the cron fields of robfig's descriptors, which fugit (sidekiq-cron)
// cannot combine with a time zone.
var descriptorFields = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// sidekiqCronSpec returns the spec as Ferry writes it into sidekiq-cron's "cron" field,
// in fugit's syntax so that Ruby pollers read the same ticks: the fields, then the zone
// name when loc is not time.Local. "@every d" becomes cron fields in UTC when d divides a
// minute, an hour or a day (the epoch grid is then a cron schedule); other intervals stay
// "@every d", which sidekiq-cron lists but does not run (Ferry runs them).
func sidekiqCronSpec(p parsedSpec, loc *time.Location) string {
	if p.every > 0 {
		if f, ok := everyAsCron(int64(p.every / time.Second)); ok {
			return f + " UTC"
		}
		return p.body
	}
	body := p.body
	if f, ok := descriptorFields[body]; ok {
		body = f
	}
	if loc == nil || loc == time.Local {
		return body
	}
	return body + " " + loc.String()
}

// everyAsCron returns the 6-field cron expression (in UTC) whose ticks are the multiples
// of secs since the epoch, when there is one.
func everyAsCron(secs int64) (string, bool) {
	switch {
	case secs == 1:
		return "* * * * * *", true
	case secs == 60:
		return "0 * * * * *", true
	case secs < 60 && 60%secs == 0:
		return "*/" + strconv.FormatInt(secs, 10) + " * * * * *", true
	case secs == 3600:
		return "0 0 * * * *", true
	case secs%60 == 0 && secs < 3600 && 3600%secs == 0:
		return "0 */" + strconv.FormatInt(secs/60, 10) + " * * * *", true
	case secs == 86400:
		return "0 0 0 * * *", true
	case secs%3600 == 0 && secs < 86400 && 86400%secs == 0:
		return "0 0 */" + strconv.FormatInt(secs/3600, 10) + " * * *", true
	}
	return "", false
}
