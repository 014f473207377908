package sidekiq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// The two class names Sidekiq's ActiveJob adapters put in "class". The real ActiveJob class
// is in "wrapped".
const (
	// ActiveJobWrapperClass is the wrapper of Rails' adapter and of Sidekiq before 8.0. Ferry
	// writes this name when it enqueues an ActiveJob job, because every Sidekiq version with
	// the adapter loaded can run it.
	ActiveJobWrapperClass = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
	// ActiveJobWrapperClass8 is the wrapper Sidekiq 8 writes.
	ActiveJobWrapperClass8 = "Sidekiq::ActiveJob::Wrapper"
)

// Job is one Sidekiq job: the JSON object stored in a queue list, the schedule, retry or
// dead set.
//
// The fields below are the keys Ferry reads and writes itself. Every other key (tags, bid,
// cattr, lock_digest, tracing keys, keys a future Sidekiq adds) is kept verbatim in Extra and
// written back unchanged, so a job read by Ferry and rewritten (retried, buried) loses
// nothing Ruby put in it. A job read from Redis also keeps the exact bytes it came in as
// (Raw), which is what acknowledging and requeueing use.
type Job struct {
	// Class is the Ruby class name ("class"). For ActiveJob jobs it is the wrapper; see
	// Wrapped and HandlerName.
	Class string
	// JID is the job id ("jid"), 24 lowercase hex characters when Sidekiq or Ferry made it.
	JID string
	// Queue is the queue name without the "queue:" prefix ("queue").
	Queue string
	// Args is the raw JSON array of arguments ("args"). Use DecodeArgs or ArgsSlice to read
	// it; integers beyond 2^53 survive because it is never decoded into float64. Written as
	// [] when empty.
	Args json.RawMessage
	// Retry is the "retry" field: absent, a bool or an integer.
	Retry RetryPolicy
	// Wrapped is the ActiveJob class of a job whose Class is an ActiveJob wrapper.
	Wrapped string
	// CreatedAt is when the job was first pushed ("created_at").
	CreatedAt time.Time
	// EnqueuedAt is when the job was last pushed onto a queue ("enqueued_at"); zero for jobs
	// waiting in the schedule set.
	EnqueuedAt time.Time
	// RetryQueue is the queue retries go to ("retry_queue"), when set.
	RetryQueue string
	// RetryCount is the number of retries so far ("retry_count"): nil before the first
	// failure, 0 after it, then 1, 2, ...
	RetryCount *int
	// FailedAt is the first failure ("failed_at").
	FailedAt time.Time
	// RetriedAt is the latest failure after the first ("retried_at").
	RetriedAt time.Time
	// ErrorClass names the type of the latest error ("error_class").
	ErrorClass string
	// ErrorMessage is the latest error's message ("error_message").
	ErrorMessage string
	// Extra holds every other key with its raw JSON value. Use Get and Set to read and
	// write it.
	Extra map[string]json.RawMessage

	raw    []byte
	seen   [numTimes]seenTime
	guards []PushGuard // set for the duration of one push (see PushGuard)
}

// The timestamp fields whose original bytes are kept, so that a rewrite of an unchanged
// timestamp repeats it byte for byte (no float round-trip drift).
const (
	tCreated = iota
	tEnqueued
	tFailed
	tRetried
	numTimes
)

type seenTime struct {
	raw []byte
	t   time.Time
}

var timeKeys = [numTimes]string{"created_at", "enqueued_at", "failed_at", "retried_at"}

func (j *Job) timeField(i int) *time.Time {
	switch i {
	case tCreated:
		return &j.CreatedAt
	case tEnqueued:
		return &j.EnqueuedAt
	case tFailed:
		return &j.FailedAt
	default:
		return &j.RetriedAt
	}
}

// ParseJob decodes a job payload. It accepts every shape Sidekiq 6.x, 7.x and 8.x write:
// timestamps as float seconds, integer milliseconds or numeric strings; "retry" as a bool or
// an integer; unknown keys of any type. It copies data, so the caller may reuse it.
//
// Only what makes a payload unrunnable is an error: invalid JSON, a value that is not an
// object, a missing or non-string "class", a missing or non-array "args", or a "jid" or
// "queue" that is not a string. The error is a *PayloadError naming the field and what was
// wrong. A known key with an unexpected type (say "created_at": true) is not an error: it is
// kept in Extra as it was and written back unchanged.
func ParseJob(data []byte) (*Job, error) {
	j := &Job{raw: bytes.Clone(data)}
	if err := j.decode(j.raw); err != nil {
		return nil, err
	}
	return j, nil
}

// ParseJobString is ParseJob for a payload held in a string, as go-redis returns it.
func ParseJobString(s string) (*Job, error) {
	j := &Job{raw: []byte(s)}
	if err := j.decode(j.raw); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *Job) decode(data []byte) error {
	var hasClass, hasArgs bool
	err := jsonwire.ScanObject(data, func(rk, v []byte) error {
		key, err := jsonwire.Unquote(rk)
		if err != nil {
			return &PayloadError{Reason: "invalid key: " + err.Error()}
		}
		kind := jsonwire.KindOf(v)
		switch key {
		case "class":
			if kind != jsonwire.String {
				return &PayloadError{Field: "class", Reason: "must be a string, got " + kind.String()}
			}
			j.Class, err = jsonwire.Unquote(v)
			hasClass = true
			return err
		case "args":
			if kind != jsonwire.Array {
				return &PayloadError{Field: "args", Reason: "must be a JSON array, got " + kind.String()}
			}
			j.Args = json.RawMessage(v)
			hasArgs = true
			return nil
		case "jid":
			if kind == jsonwire.Null {
				return nil
			}
			if kind != jsonwire.String {
				return &PayloadError{Field: "jid", Reason: "must be a string, got " + kind.String()}
			}
			j.JID, err = jsonwire.Unquote(v)
			return err
		case "queue":
			if kind == jsonwire.Null {
				return nil
			}
			if kind != jsonwire.String {
				return &PayloadError{Field: "queue", Reason: "must be a string, got " + kind.String()}
			}
			j.Queue, err = jsonwire.Unquote(v)
			return err
		case "retry":
			j.Retry = parseRetry(v)
			return nil
		case "wrapped":
			if ok, err := optString(kind, v, &j.Wrapped); ok || err != nil {
				return err
			}
		case "retry_queue":
			if ok, err := optString(kind, v, &j.RetryQueue); ok || err != nil {
				return err
			}
		case "error_class":
			if ok, err := optString(kind, v, &j.ErrorClass); ok || err != nil {
				return err
			}
		case "error_message":
			if ok, err := optString(kind, v, &j.ErrorMessage); ok || err != nil {
				return err
			}
		case "retry_count":
			if n, ok := parseIntegral(v); ok && kind == jsonwire.Number {
				j.RetryCount = &n
				return nil
			}
		case "created_at", "enqueued_at", "failed_at", "retried_at":
			if t, ok := parseTimestamp(v); ok {
				i := timeIndex(key)
				*j.timeField(i) = t
				j.seen[i] = seenTime{raw: v, t: t}
				return nil
			}
		}
		if j.Extra == nil {
			j.Extra = make(map[string]json.RawMessage, 4)
		}
		j.Extra[key] = json.RawMessage(v)
		return nil
	})
	if err != nil {
		if pe, ok := err.(*PayloadError); ok {
			return pe
		}
		return &PayloadError{Reason: err.Error(), cause: err}
	}
	if !hasClass {
		return &PayloadError{Field: "class", Reason: "missing"}
	}
	if j.Class == "" {
		return &PayloadError{Field: "class", Reason: "empty"}
	}
	if !hasArgs {
		return &PayloadError{Field: "args", Reason: "missing"}
	}
	return nil
}

// optString sets *dst from a JSON string and reports whether it did. An empty string is
// not set, so it stays in Extra and is written back: the field cannot tell "" from absent,
// and Ruby can (raise Foo, "" stores "error_message":"").
func optString(kind jsonwire.Kind, v []byte, dst *string) (bool, error) {
	if kind != jsonwire.String {
		return false, nil
	}
	s, err := jsonwire.Unquote(v)
	if err != nil || s == "" {
		return false, err
	}
	*dst = s
	return true, nil
}

func timeIndex(key string) int {
	for i, k := range timeKeys {
		if k == key {
			return i
		}
	}
	return -1
}

// Raw returns the exact bytes the job was parsed from, or nil for a job built in Go.
// Acknowledging, requeueing and removing a job by value must use these bytes, never a
// re-encoding. The caller must not modify them.
func (j *Job) Raw() []byte { return j.raw }

// MarshalJSON encodes the job with float-second timestamps. See AppendJSON.
func (j *Job) MarshalJSON() ([]byte, error) {
	return j.AppendJSON(make([]byte, 0, 256+len(j.Args)), TimeSeconds), nil
}

// AppendJSON appends the job's JSON encoding to buf.
//
// Timestamps that still hold the value they were read with are written with their original
// bytes; changed or new ones are written in format f. Strings are written as Ruby's
// JSON.generate writes them ("<>&" and non-ASCII unescaped). "args" is written as [] when
// empty; "at" is never written (it is not a field, and Sidekiq strips it from every stored
// payload). Extra keys follow the known ones in sorted order; an Extra entry whose key is
// also a field is skipped when the field holds a value.
func (j *Job) AppendJSON(buf []byte, f TimeFormat) []byte {
	buf = append(buf, '{')
	first := true
	key := func(k string) {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = jsonwire.AppendString(buf, k)
		buf = append(buf, ':')
	}
	str := func(k, v string) {
		if v != "" {
			key(k)
			buf = jsonwire.AppendString(buf, v)
		}
	}
	if j.Retry.IsSet() {
		key("retry")
		buf = j.Retry.appendJSON(buf)
	}
	str("queue", j.Queue)
	str("class", j.Class)
	str("wrapped", j.Wrapped)
	key("args")
	if len(bytes.TrimSpace(j.Args)) == 0 || bytes.Equal(j.Args, []byte("null")) {
		buf = append(buf, '[', ']')
	} else {
		buf = append(buf, j.Args...)
	}
	str("jid", j.JID)
	str("retry_queue", j.RetryQueue)
	for i := 0; i < numTimes; i++ {
		t := *j.timeField(i)
		if t.IsZero() {
			continue
		}
		key(timeKeys[i])
		if s := j.seen[i]; s.raw != nil && s.t.Equal(t) {
			buf = append(buf, s.raw...)
		} else {
			buf = appendTimestamp(buf, t, f)
		}
	}
	str("error_message", j.ErrorMessage)
	str("error_class", j.ErrorClass)
	if j.RetryCount != nil {
		key("retry_count")
		buf = strconv.AppendInt(buf, int64(*j.RetryCount), 10)
	}
	if len(j.Extra) > 0 {
		keys := make([]string, 0, len(j.Extra))
		for k := range j.Extra {
			if k == "at" || j.fieldHolds(k) {
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := j.Extra[k]
			if !jsonwire.Valid(v) {
				continue
			}
			key(k)
			buf = append(buf, v...)
		}
	}
	return append(buf, '}')
}

// fieldHolds reports whether k is a known field that currently holds a value (so an Extra
// entry of the same name is stale).
func (j *Job) fieldHolds(k string) bool {
	switch k {
	case "class", "args", "jid", "queue", "retry":
		return true // always written from the field, or deliberately absent
	case "wrapped":
		return j.Wrapped != ""
	case "retry_queue":
		return j.RetryQueue != ""
	case "error_class":
		return j.ErrorClass != ""
	case "error_message":
		return j.ErrorMessage != ""
	case "retry_count":
		return j.RetryCount != nil
	case "created_at":
		return !j.CreatedAt.IsZero()
	case "enqueued_at":
		return !j.EnqueuedAt.IsZero()
	case "failed_at":
		return !j.FailedAt.IsZero()
	case "retried_at":
		return !j.RetriedAt.IsZero()
	}
	return false
}

// Get decodes the Extra key k into v (which must be a pointer), reporting whether the key
// was present. Numbers decode as json.Number when v is *any.
func (j *Job) Get(k string, v any) (bool, error) {
	raw, ok := j.Extra[k]
	if !ok {
		return false, nil
	}
	if err := unmarshalUseNumber(raw, v); err != nil {
		return true, fmt.Errorf("sidekiq: job %s: key %q: %w", j.JID, k, err)
	}
	return true, nil
}

// Set stores v (encoded as JSON, without HTML escaping) under the Extra key k. A nil v
// deletes the key. Setting a key that has a field of its own ("class", "retry_count", ...)
// is an error: set the field.
func (j *Job) Set(k string, v any) error {
	if isFieldKey(k) {
		return fmt.Errorf("sidekiq: %q is a Job field; set the field instead", k)
	}
	if v == nil {
		delete(j.Extra, k)
		return nil
	}
	raw, err := marshalNoEscape(v)
	if err != nil {
		return fmt.Errorf("sidekiq: encoding key %q: %w", k, err)
	}
	if j.Extra == nil {
		j.Extra = make(map[string]json.RawMessage, 2)
	}
	j.Extra[k] = raw
	return nil
}

func isFieldKey(k string) bool {
	switch k {
	case "class", "args", "jid", "queue", "retry", "wrapped", "retry_queue", "error_class",
		"error_message", "retry_count", "created_at", "enqueued_at", "failed_at", "retried_at":
		return true
	}
	return false
}

// IsActiveJob reports whether the job was enqueued through an ActiveJob adapter.
func (j *Job) IsActiveJob() bool {
	return j.Class == ActiveJobWrapperClass || j.Class == ActiveJobWrapperClass8
}

// HandlerName is the name a server looks handlers up by: the wrapped ActiveJob class for
// ActiveJob jobs (from "wrapped", or the envelope's "job_class" when "wrapped" is missing),
// Class otherwise.
func (j *Job) HandlerName() string {
	if !j.IsActiveJob() {
		return j.Class
	}
	if j.Wrapped != "" {
		return j.Wrapped
	}
	var env []struct {
		JobClass string `json:"job_class"`
	}
	if json.Unmarshal(j.Args, &env) == nil && len(env) > 0 && env[0].JobClass != "" {
		return env[0].JobClass
	}
	return j.Class
}

// DecodeArgs decodes the positional arguments into dst, one pointer per argument, in
// order. Missing trailing arguments leave their destination untouched; extra arguments are
// an error. Numbers decoded into an `any` become json.Number, so no integer loses precision.
func (j *Job) DecodeArgs(dst ...any) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(j.argsOrEmpty(), &raws); err != nil {
		return fmt.Errorf("sidekiq: job %s (%s): args: %w", j.JID, j.Class, err)
	}
	if len(raws) > len(dst) {
		return fmt.Errorf("sidekiq: job %s (%s): got %d args, want at most %d", j.JID, j.Class, len(raws), len(dst))
	}
	for i, raw := range raws {
		if err := unmarshalUseNumber(raw, dst[i]); err != nil {
			return fmt.Errorf("sidekiq: job %s (%s): arg %d: %w", j.JID, j.Class, i, err)
		}
	}
	return nil
}

// ArgsSlice decodes the arguments into a slice of Go values: nil, bool, json.Number,
// string, []any and map[string]any.
func (j *Job) ArgsSlice() ([]any, error) {
	var out []any
	if err := unmarshalUseNumber(j.argsOrEmpty(), &out); err != nil {
		return nil, fmt.Errorf("sidekiq: job %s (%s): args: %w", j.JID, j.Class, err)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func (j *Job) argsOrEmpty() []byte {
	if len(j.Args) == 0 {
		return []byte("[]")
	}
	return j.Args
}

// Clone returns a deep copy of the job (Raw included) that can be changed independently.
func (j *Job) Clone() *Job {
	c := *j
	c.Args = bytes.Clone(j.Args)
	if j.RetryCount != nil {
		n := *j.RetryCount
		c.RetryCount = &n
	}
	if j.Extra != nil {
		c.Extra = make(map[string]json.RawMessage, len(j.Extra))
		for k, v := range j.Extra {
			c.Extra[k] = v
		}
	}
	return &c
}

// BuryOnFailure reports whether the job goes to the dead set when its retries are
// exhausted: true unless the payload says "dead": false (then it is dropped).
func (j *Job) BuryOnFailure() bool {
	return string(j.Extra["dead"]) != "false"
}

func unmarshalUseNumber(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

func marshalNoEscape(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
