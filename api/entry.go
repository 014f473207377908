package api

import (
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// Entry is one job as it sits in Redis: in a queue (Ruby's JobRecord) or in the
// schedule, retry or dead set (Ruby's SortedEntry).
type Entry struct {
	// Set is the sorted set the entry is in; empty for a job in a queue.
	Set SetName
	// Score is the entry's score in its set: when it runs (schedule, retry) or when it
	// died (dead), in float epoch seconds. Zero for a queue job.
	Score float64
	// Value is the member exactly as stored in Redis. Removing the entry uses these bytes.
	Value string
	// Job is the decoded payload, or nil when Value is not a valid job (Err says why).
	// Read-only: the actions that rewrite a job work on a copy.
	Job *sidekiq.Job
	// Err is why Value did not decode as a job: invalid JSON, or a missing class or args.
	Err error

	queue string // the list a queue job sits in
	jid   string
}

func newEntry(set SetName, queue string, score float64, value string) *Entry {
	e := &Entry{Set: set, Score: score, Value: value, queue: queue}
	e.Job, e.Err = sidekiq.ParseJobString(value)
	if e.Job != nil {
		e.jid = e.Job.JID
	} else {
		// A payload that is JSON but not a runnable job may still name its jid.
		_ = jsonwire.ScanObject([]byte(value), func(k, v []byte) error {
			if string(k) == `"jid"` {
				e.jid = rawString(v)
			}
			return nil
		})
	}
	return e
}

// At is the score as a time: when the entry runs (schedule, retry) or when it died
// (dead). Zero for a queue job.
func (e *Entry) At() time.Time {
	if e.Set == "" {
		return time.Time{}
	}
	return secondsToTime(e.Score)
}

// JID is the job's jid, or "" when the payload has none.
func (e *Entry) JID() string { return e.jid }

// Queue is the queue the job sits in (a queue job) or goes to (a set entry).
func (e *Entry) Queue() string {
	if e.queue != "" {
		return e.queue
	}
	if e.Job != nil {
		return e.Job.Queue
	}
	return ""
}

// Class is the payload's "class", "" for an invalid payload.
func (e *Entry) Class() string {
	if e.Job == nil {
		return ""
	}
	return e.Job.Class
}

// DisplayClass is the class the Web UI shows: "display_class" when the payload has one,
// the wrapped class of an ActiveJob job, otherwise Class.
func (e *Entry) DisplayClass() string { return DisplayClass(e.Job) }

// DisplayClass is the class the Web UI shows for job: its "display_class" when it has
// one, the wrapped class of an ActiveJob job, otherwise its class. "" for a nil job.
func DisplayClass(job *sidekiq.Job) string {
	if job == nil {
		return ""
	}
	var dc string
	if ok, err := job.Get("display_class", &dc); ok && err == nil && dc != "" {
		return dc
	}
	if job.IsActiveJob() {
		if h := job.HandlerName(); h != "" {
			return h
		}
	}
	return job.Class
}

// Since is the time an entry's age is measured from:
//   - retry set: its latest failure (retried_at, else failed_at, else created_at);
//   - dead set: when it died (its score);
//   - schedule: when it was scheduled (created_at);
//   - a queue: when it was enqueued (enqueued_at, else created_at).
//
// Zero when the payload does not say.
func (e *Entry) Since() time.Time {
	if e.Set == DeadSet {
		return e.At()
	}
	j := e.Job
	if j == nil {
		return time.Time{}
	}
	switch e.Set {
	case RetrySet:
		return firstSet(j.RetriedAt, j.FailedAt, j.CreatedAt)
	case ScheduledSet:
		return j.CreatedAt
	}
	return firstSet(j.EnqueuedAt, j.CreatedAt)
}

func firstSet(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// Filter selects entries. Every field set must match (AND); the zero Filter matches every
// entry.
type Filter struct {
	// JIDs selects the entries with one of these jids. In a sorted set they are looked up
	// with ZSCAN MATCH *jid* (Redis filters, as Ruby's find_job does) instead of a full
	// scan.
	JIDs []string
	// Class matches the payload's class, its wrapped ActiveJob class or its display
	// class. "*" matches any run of characters, so "Mailer*" and "*Job" work; otherwise
	// the name must match exactly.
	Class string
	// Queue matches the queue the job is in or goes to, exactly.
	Queue string
	// Error matches entries whose error_class or error_message contains this text,
	// ignoring case.
	Error string
	// OlderThan and NewerThan match entries whose age (the time since Entry.Since) is at
	// least, or less than, this. An entry with no such time matches neither.
	OlderThan, NewerThan time.Duration
}

// IsZero reports whether f matches every entry.
func (f *Filter) IsZero() bool {
	return f == nil || (len(f.JIDs) == 0 && f.Class == "" && f.Queue == "" && f.Error == "" &&
		f.OlderThan == 0 && f.NewerThan == 0)
}

// Match reports whether e passes every condition of f, with ages measured at now.
func (f *Filter) Match(e *Entry, now time.Time) bool {
	if f == nil {
		return true
	}
	if len(f.JIDs) > 0 {
		found := false
		for _, j := range f.JIDs {
			if j != "" && j == e.jid {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.Class != "" {
		if e.Job == nil {
			return false
		}
		if !classMatch(f.Class, e.Job.Class) && !classMatch(f.Class, e.DisplayClass()) &&
			!classMatch(f.Class, e.Job.Wrapped) {
			return false
		}
	}
	if f.Queue != "" && e.Queue() != f.Queue {
		return false
	}
	if f.Error != "" {
		if e.Job == nil {
			return false
		}
		needle := strings.ToLower(f.Error)
		if !strings.Contains(strings.ToLower(e.Job.ErrorClass), needle) &&
			!strings.Contains(strings.ToLower(e.Job.ErrorMessage), needle) {
			return false
		}
	}
	if f.OlderThan > 0 || f.NewerThan > 0 {
		since := e.Since()
		if since.IsZero() {
			return false
		}
		age := now.Sub(since)
		if f.OlderThan > 0 && age < f.OlderThan {
			return false
		}
		if f.NewerThan > 0 && age >= f.NewerThan {
			return false
		}
	}
	return true
}

// classMatch matches a class name against a pattern in which "*" stands for any run of
// characters (and nothing else is special, so "::" and "?" in class names are literal).
func classMatch(pattern, name string) bool {
	if name == "" {
		return false
	}
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, last)
}
