package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry/api"
)

// filterFlags are the selection flags shared by the listings and the bulk actions.
type filterFlags struct {
	class, queue, errText string
	olderThan, newerThan  string
}

func (f *filterFlags) register(fs *pflag.FlagSet, what string) {
	fs.StringVar(&f.class, "class", "", "only "+what+" of this class (class, wrapped ActiveJob class or display class; * matches anything: 'Mailer*')")
	fs.StringVar(&f.queue, "queue", "", "only "+what+" whose queue is this")
	fs.StringVar(&f.errText, "error", "", "only "+what+" whose error class or message contains this text (any case)")
	fs.StringVar(&f.olderThan, "older-than", "", "only "+what+" at least this old (90s, 15m, 36h, 7d)")
	fs.StringVar(&f.newerThan, "newer-than", "", "only "+what+" younger than this")
}

// set reports whether any selection flag was given.
func (f *filterFlags) set() bool {
	return f.class != "" || f.queue != "" || f.errText != "" || f.olderThan != "" || f.newerThan != ""
}

// filter builds the api.Filter, with jids.
func (f *filterFlags) filter(jids []string) (*api.Filter, error) {
	out := &api.Filter{JIDs: jids, Class: f.class, Queue: f.queue, Error: f.errText}
	var err error
	if out.OlderThan, err = parseAge("--older-than", f.olderThan); err != nil {
		return nil, err
	}
	if out.NewerThan, err = parseAge("--newer-than", f.newerThan); err != nil {
		return nil, err
	}
	return out, nil
}

// describe says in words what the flags select, for prompts.
func (f *filterFlags) describe() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, fmt.Sprintf("%s %s", k, strconv.Quote(v)))
		}
	}
	add("class", f.class)
	add("queue", f.queue)
	add("error containing", f.errText)
	if f.olderThan != "" {
		parts = append(parts, "older than "+f.olderThan)
	}
	if f.newerThan != "" {
		parts = append(parts, "newer than "+f.newerThan)
	}
	return strings.Join(parts, ", ")
}

var daysPrefix = regexp.MustCompile(`^(\d+)d`)

// parseAge reads a duration: Go's notation (90s, 15m, 36h, 1h30m) with days allowed in
// front (7d, 1d12h).
func parseAge(flag, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	rest := s
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, usageErr("%s %q: too many days", flag, s)
		}
		d = time.Duration(n) * 24 * time.Hour
		rest = s[len(m[0]):]
	}
	if rest != "" {
		more, err := time.ParseDuration(rest)
		if err != nil {
			return 0, usageErr("%s %q: want a duration such as 90s, 15m, 36h or 7d", flag, s)
		}
		d += more
	}
	if d <= 0 {
		return 0, usageErr("%s %q: want a positive duration", flag, s)
	}
	return d, nil
}
