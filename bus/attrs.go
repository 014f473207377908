package bus

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// attrs is an event's attributes in the order they were written, each value kept as the
// raw JSON it arrived as (numbers are never re-encoded). Ruby hashes keep insertion order
// and queue-bus builds its payloads with Hash#merge; attrs does the same, so a payload
// rewritten by a Go driver reads like one a Ruby driver wrote.
type attrs struct {
	keys []string
	vals [][]byte
	idx  map[string]int // built once there are more than a few keys
}

const attrsIndexAt = 12

// parseAttrs reads a JSON object. A key given twice keeps its first position and its last
// value, as Ruby's JSON.parse does.
func parseAttrs(obj []byte) (*attrs, error) {
	a := &attrs{}
	err := jsonwire.ScanObject(obj, func(rk, v []byte) error {
		k, err := jsonwire.Unquote(rk)
		if err != nil {
			return err
		}
		a.set(k, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// attrsFrom encodes v (a map with string keys, a struct, or nil) as attributes, with
// sidekiq.EncodeArgs' rules: floats keep a fraction, strings are not HTML-escaped, map keys
// are sorted.
func attrsFrom(v any) (*attrs, error) {
	if v == nil {
		return &attrs{}, nil
	}
	raw, err := sidekiq.EncodeArgs([]any{v})
	if err != nil {
		return nil, fmt.Errorf("bus: encoding attributes: %w", err)
	}
	obj := bytes.TrimSpace(raw[1 : len(raw)-1])
	switch jsonwire.KindOf(obj) {
	case jsonwire.Object:
		return parseAttrs(obj)
	case jsonwire.Null:
		return &attrs{}, nil
	}
	return nil, fmt.Errorf("bus: attributes of type %T encode as JSON %s; want an object", v, jsonwire.KindOf(obj))
}

func (a *attrs) len() int { return len(a.keys) }

func (a *attrs) find(k string) int {
	if a.idx != nil {
		if i, ok := a.idx[k]; ok {
			return i
		}
		return -1
	}
	for i, key := range a.keys {
		if key == k {
			return i
		}
	}
	return -1
}

// get returns the raw value of k and whether k is present.
func (a *attrs) get(k string) ([]byte, bool) {
	if i := a.find(k); i >= 0 {
		return a.vals[i], true
	}
	return nil, false
}

// str returns k's value when it is a JSON string.
func (a *attrs) str(k string) (string, bool) {
	raw, ok := a.get(k)
	if !ok || jsonwire.KindOf(raw) != jsonwire.String {
		return "", false
	}
	s, err := jsonwire.Unquote(raw)
	return s, err == nil
}

// set replaces k's value in place, or appends k (Ruby's hash[k] = v).
func (a *attrs) set(k string, v []byte) {
	if i := a.find(k); i >= 0 {
		a.vals[i] = v
		return
	}
	a.keys = append(a.keys, k)
	a.vals = append(a.vals, v)
	if a.idx != nil {
		a.idx[k] = len(a.keys) - 1
	} else if len(a.keys) > attrsIndexAt {
		a.idx = make(map[string]int, len(a.keys)*2)
		for i, key := range a.keys {
			a.idx[key] = i
		}
	}
}

func (a *attrs) setString(k, v string) { a.set(k, jsonwire.AppendString(nil, v)) }

func (a *attrs) setInt(k string, v int64) { a.set(k, strconv.AppendInt(nil, v, 10)) }

// remove deletes k, keeping the order of the others.
func (a *attrs) remove(k string) {
	i := a.find(k)
	if i < 0 {
		return
	}
	a.keys = append(a.keys[:i], a.keys[i+1:]...)
	a.vals = append(a.vals[:i], a.vals[i+1:]...)
	if a.idx != nil {
		a.idx = nil
		if len(a.keys) > attrsIndexAt {
			a.idx = make(map[string]int, len(a.keys)*2)
			for j, key := range a.keys {
				a.idx[key] = j
			}
		}
	}
}

// merged returns Ruby's a.merge(b): a's keys in a's order with b's values where b has
// them, then b's other keys in b's order.
func (a *attrs) merged(b *attrs) *attrs {
	out := &attrs{
		keys: make([]string, 0, a.len()+b.len()),
		vals: make([][]byte, 0, a.len()+b.len()),
	}
	for i, k := range a.keys {
		out.set(k, a.vals[i])
	}
	for i, k := range b.keys {
		out.set(k, b.vals[i])
	}
	return out
}

// appendJSON appends the attributes as a JSON object.
func (a *attrs) appendJSON(buf []byte) []byte {
	buf = append(buf, '{')
	for i, k := range a.keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = jsonwire.AppendString(buf, k)
		buf = append(buf, ':')
		buf = append(buf, a.vals[i]...)
	}
	return append(buf, '}')
}

// errNotEvent is wrapped by the error for a bus job whose argument is not an event.
var errNotEvent = errors.New("bus: job argument is not an event")

// jobAttrs reads the event a QueueBus::Worker job carries: its single argument is the
// event as a JSON string (queue-bus encodes the attributes twice). An argument that is the
// object itself is accepted too.
func jobAttrs(job *sidekiq.Job) (*attrs, error) {
	var first []byte
	err := eachArg(job.Args, func(v []byte) bool {
		first = v
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("%w: args: %v", errNotEvent, err)
	}
	switch jsonwire.KindOf(first) {
	case jsonwire.String:
		s, err := jsonwire.Unquote(first)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotEvent, err)
		}
		a, err := parseAttrs([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotEvent, err)
		}
		return a, nil
	case jsonwire.Object:
		a, err := parseAttrs(first)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotEvent, err)
		}
		return a, nil
	case jsonwire.Invalid:
		return nil, fmt.Errorf("%w: no arguments", errNotEvent)
	}
	return nil, fmt.Errorf("%w: args[0] is a JSON %s", errNotEvent, jsonwire.KindOf(first))
}

// eachArg calls fn with each element of the JSON array args until fn returns false.
func eachArg(args []byte, fn func(v []byte) bool) error {
	i := jsonwire.SkipSpace(args, 0)
	if i >= len(args) || args[i] != '[' {
		return errors.New("not a JSON array")
	}
	i = jsonwire.SkipSpace(args, i+1)
	if i < len(args) && args[i] == ']' {
		return nil
	}
	for {
		start, end, err := jsonwire.SkipValue(args, i)
		if err != nil {
			return err
		}
		if !fn(args[start:end]) {
			return nil
		}
		i = jsonwire.SkipSpace(args, end)
		if i >= len(args) || args[i] != ',' {
			return nil
		}
		i++
	}
}

// workerArgs returns the "args" of a QueueBus::Worker job carrying a: a one-element array
// holding the attributes as a JSON string.
func workerArgs(a *attrs) []byte {
	obj := a.appendJSON(make([]byte, 0, 256))
	out := make([]byte, 0, len(obj)+len(obj)/8+4)
	out = append(out, '[')
	out = jsonwire.AppendString(out, string(obj))
	return append(out, ']')
}
