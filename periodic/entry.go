package periodic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhq/ferry/sidekiq"
)

// Bounds on what a job definition read from Redis may hold. Anyone who can write to Redis
// can write a cron job; these keep such a job from costing Ferry unbounded memory.
const (
	maxNameLen  = 1024
	maxClassLen = 512
	maxQueueLen = 512
	// maxFieldBytes bounds each field read from a job hash (message, args, ...).
	maxFieldBytes = 64 << 10
)

// hashFields are the fields of a sidekiq-cron 1.8.0 job hash that Ferry reads, in the
// order loadScript returns them.
var hashFields = []string{
	"name", "cron", "klass", "class", "args", "message", "status", "active_job",
	"date_as_argument", "queue_name_prefix", "queue_name_delimiter", "description",
	"last_enqueue_time", "queue",
}

const (
	fName = iota
	fCron
	fKlass
	fClass
	fArgs
	fMessage
	fStatus
	fActiveJob
	fDateAsArgument
	fQueuePrefix
	fQueueDelimiter
	fDescription
	fLastEnqueue
	fQueue
)

// entry is one job as stored in sidekiq-cron's keys: what a tick enqueues and when.
type entry struct {
	name        string
	cron        string // the "cron" field exactly as stored: the claim compares it
	sched       schedule
	status      string // "enabled" when the field is missing, as sidekiq-cron reads it
	class       string
	queue       string // for ActiveJob, with the queue name prefix
	args        json.RawMessage
	message     map[string]json.RawMessage
	activeJob   bool
	dateAsArg   bool
	description *string
	lastEnqueue time.Time
}

// entryError is why a job read from Redis cannot be run.
type entryError struct {
	name   string
	reason string
}

func (e *entryError) Error() string { return "periodic: cron job: " + e.reason }

// parseEntry reads one job hash. member is the cron_jobs member it was found under and
// vals the values of hashFields (nil for missing fields). Anything wrong is an error,
// never a panic.
func parseEntry(member string, vals []*string, loc *time.Location) (*entry, error) {
	if len(member) <= len(jobMemberPrefix) || member[:len(jobMemberPrefix)] != jobMemberPrefix {
		return nil, &entryError{reason: fmt.Sprintf("cron_jobs member %q is not a cron_job: key", cut(member))}
	}
	name := member[len(jobMemberPrefix):]
	bad := func(format string, args ...any) (*entry, error) {
		return nil, &entryError{name: name, reason: fmt.Sprintf(format, args...)}
	}
	if len(name) > maxNameLen || !utf8.ValidString(name) {
		return bad("name longer than %d bytes or not UTF-8", maxNameLen)
	}
	get := func(i int) (string, bool) {
		if vals[i] == nil {
			return "", false
		}
		return *vals[i], true
	}
	if n, _ := get(fName); n != name {
		return bad("its name field %q does not match its key", cut(n))
	}
	e := &entry{name: name, status: "enabled"}
	e.cron, _ = get(fCron)
	p, err := parseSpec(e.cron, loc)
	if err != nil {
		return nil, &entryError{name: name, reason: err.Error()}
	}
	e.sched = p.sched
	if s, ok := get(fStatus); ok {
		e.status = s
	}
	e.activeJob = rubyTruthy(vals[fActiveJob])
	e.dateAsArg = rubyTruthy(vals[fDateAsArgument])
	if d, ok := get(fDescription); ok {
		e.description = &d
	}
	if t, ok := get(fLastEnqueue); ok {
		e.lastEnqueue, _ = parseEnqueueTime(t)
	}
	if m, ok := get(fMessage); ok && m != "" {
		if err := json.Unmarshal([]byte(m), &e.message); err != nil || e.message == nil {
			return bad("message is not a JSON object")
		}
	}
	e.class, _ = get(fKlass)
	if e.class == "" {
		e.class, _ = get(fClass)
	}
	if e.class == "" {
		e.class, _ = jsonString(e.message["class"])
	}
	if e.class == "" {
		return bad("no class")
	}
	if len(e.class) > maxClassLen {
		return bad("class longer than %d bytes", maxClassLen)
	}
	queue, ok := jsonString(e.message["queue"])
	if !ok {
		queue, _ = get(fQueue)
	}
	if queue == "" {
		queue = "default"
	}
	if e.activeJob {
		if prefix, _ := get(fQueuePrefix); prefix != "" {
			delim, _ := get(fQueueDelimiter)
			if delim == "" {
				delim = "_"
			}
			queue = prefix + delim + queue
		}
	}
	if err := checkQueue(queue); err != nil {
		return bad("%v", err)
	}
	e.queue = queue
	e.args = json.RawMessage("[]")
	if a, ok := get(fArgs); ok && a != "" {
		switch {
		case !json.Valid([]byte(a)):
			// sidekiq-cron reads args it cannot parse as JSON as one string argument.
			e.args, _ = json.Marshal([]string{a})
		case bytes.HasPrefix(bytes.TrimSpace([]byte(a)), []byte("[")):
			e.args = json.RawMessage(a)
		default:
			return bad("args is JSON but not an array")
		}
	}
	return e, nil
}

// rubyTruthy reads a boolean field as sidekiq-cron does: true, t, yes, y or 1, in any case.
func rubyTruthy(v *string) bool { return v != nil && truthy.MatchString(*v) }

var truthy = regexp.MustCompile(`(?i)^(true|t|yes|y|1)$`)

// checkQueue refuses a queue name that is empty, too long, or holds whitespace or control
// characters: it becomes the tail of a queue: key and a member of the queues set.
func checkQueue(q string) error {
	if q == "" {
		return errors.New("empty queue name")
	}
	if len(q) > maxQueueLen {
		return fmt.Errorf("queue name longer than %d bytes", maxQueueLen)
	}
	for _, r := range q {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("queue name %q holds whitespace or control characters", cut(q))
		}
	}
	return nil
}

func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// job builds the payload one tick enqueues, as sidekiq-cron's enque! does for a class it
// cannot load: the stored message with the stored args (and the time, for
// date_as_argument), or for ActiveJob jobs the adapter's envelope. Keys that must be new
// for each enqueue (jid, created_at, enqueued_at, at) are dropped from the message.
func (e *entry) job(now time.Time) (*sidekiq.Job, error) {
	args := e.args
	if e.dateAsArg {
		var list []json.RawMessage
		if err := json.Unmarshal(args, &list); err != nil {
			return nil, err
		}
		list = append(list, json.RawMessage(strconv.FormatFloat(float64(now.UnixNano())/1e9, 'f', -1, 64)))
		var err error
		if args, err = json.Marshal(list); err != nil {
			return nil, err
		}
	}
	var m map[string]any
	if e.activeJob {
		id, err := uuidV4()
		if err != nil {
			return nil, err
		}
		m = map[string]any{
			"class":       sidekiq.ActiveJobWrapperClass,
			"wrapped":     e.class,
			"queue":       e.queue,
			"description": e.description,
			"args": []any{map[string]any{
				"job_class": e.class, "job_id": id, "queue_name": e.queue, "arguments": args,
			}},
		}
	} else {
		m = make(map[string]any, len(e.message)+3)
		for k, v := range e.message {
			m[k] = v
		}
		for _, k := range []string{"jid", "created_at", "enqueued_at", "at"} {
			delete(m, k)
		}
		m["class"], m["queue"], m["args"] = e.class, e.queue, args
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return sidekiq.ParseJob(raw)
}
