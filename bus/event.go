package bus

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// Event is one event as a subscriber receives it: the publisher's attributes plus those
// queue-bus adds on the way (bus_event_type, bus_id, bus_published_at, bus_driven_at,
// bus_rider_*, bus_executed_at, ...). Values keep the JSON they were published as; the
// getters convert, and Decode and Bind decode into Go values with encoding/json (numbers
// into json.Number when the destination is an interface, so no integer loses precision).
type Event struct {
	attrs  *attrs
	job    *sidekiq.Job
	appKey string
	subKey string
}

// Type is the event type (bus_event_type).
func (e *Event) Type() string { s, _ := e.attrs.str(attrEventType); return s }

// ID is the event's bus_id, the same for every subscriber of one publish.
func (e *Event) ID() string { s, _ := e.attrs.str(attrID); return s }

// PublishedAt is bus_published_at, or the zero time when it is missing.
func (e *Event) PublishedAt() time.Time { t, _ := e.Time(attrPublishedAt); return t }

// AppKey is the subscribing application's key (bus_rider_app_key).
func (e *Event) AppKey() string { return e.appKey }

// SubscriptionKey is the key of the subscription the event was delivered for
// (bus_rider_sub_key).
func (e *Event) SubscriptionKey() string { return e.subKey }

// Job is the job the subscriber runs in, as the subscription's middleware sees it: the
// QueueBus::Worker job with Class set to the subscription's class name (see Class) and
// Args holding the attributes as one JSON object, the shape middleware.Inputs and the
// locks package read. Changes to its Extra keys are kept when the job is rescheduled.
func (e *Event) Job() *sidekiq.Job { return e.job }

// Has reports whether the event has the attribute.
func (e *Event) Has(key string) bool { _, ok := e.attrs.get(key); return ok }

// Keys returns the attribute names in the order they were written.
func (e *Event) Keys() []string { return append([]string(nil), e.attrs.keys...) }

// Raw returns the attribute's JSON.
func (e *Event) Raw(key string) (json.RawMessage, bool) {
	v, ok := e.attrs.get(key)
	if !ok {
		return nil, false
	}
	return json.RawMessage(bytes.Clone(v)), true
}

// String returns a string attribute. It reports false when the attribute is missing or
// not a JSON string.
func (e *Event) String(key string) (string, bool) { return e.attrs.str(key) }

// Int returns an integral number attribute (7, or 7.0). It reports false when the
// attribute is missing, not a number, not whole, or beyond int64. Numeric strings are not
// converted.
func (e *Event) Int(key string) (int64, bool) {
	raw, ok := e.attrs.get(key)
	if !ok || jsonwire.KindOf(raw) != jsonwire.Number {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, true
	}
	f, ok := new(big.Float).SetString(string(raw))
	if !ok || !f.IsInt() {
		return 0, false
	}
	n, acc := f.Int64()
	return n, acc == big.Exact
}

// Float returns a number attribute as a float64. It reports false when the attribute is
// missing or not a number.
func (e *Event) Float(key string) (float64, bool) {
	raw, ok := e.attrs.get(key)
	if !ok || jsonwire.KindOf(raw) != jsonwire.Number {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// Bool returns a boolean attribute. It reports false as its second result when the
// attribute is missing or not true or false.
func (e *Event) Bool(key string) (value, ok bool) {
	raw, present := e.attrs.get(key)
	if !present || jsonwire.KindOf(raw) != jsonwire.Bool {
		return false, false
	}
	return raw[0] == 't', true
}

// Time returns an attribute holding epoch seconds (an integer or a float, as queue-bus's
// bus_*_at attributes and Ruby's Time#to_f write them). It reports false when the
// attribute is missing or not a number.
func (e *Event) Time(key string) (time.Time, bool) {
	f, ok := e.Float(key)
	if !ok || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))), true
}

// Decode decodes the attribute into v, a pointer, with encoding/json (numbers into
// json.Number for interface destinations). It reports whether the attribute was present.
func (e *Event) Decode(key string, v any) (bool, error) {
	raw, ok := e.attrs.get(key)
	if !ok {
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return true, dec.Decode(v)
}

// Bind decodes all the attributes, as one JSON object, into v (a pointer to a struct or a
// map) with encoding/json. For typed inputs with defaults and validation, subscribe with
// Inputs instead.
func (e *Event) Bind(v any) error {
	dec := json.NewDecoder(bytes.NewReader(e.attrs.appendJSON(nil)))
	dec.UseNumber()
	return dec.Decode(v)
}

// Attributes returns the attributes as a map of Go values: nil, bool, json.Number,
// string, []any and map[string]any.
func (e *Event) Attributes() map[string]any {
	out := map[string]any{}
	_ = e.Bind(&out)
	return out
}

// MarshalJSON returns the attributes as one JSON object, in their order.
func (e *Event) MarshalJSON() ([]byte, error) { return e.attrs.appendJSON(nil), nil }
