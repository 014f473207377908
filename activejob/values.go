package activejob

import (
	"fmt"
	"strings"
	"time"
)

// Go types for the Ruby values ActiveJob (Rails 6.1 and later) serializes with markers.
// DecodeArguments produces them and EncodeArguments accepts them, so a value survives a
// trip through Go.
type (
	// Symbol is a Ruby Symbol (SymbolSerializer).
	Symbol string
	// GlobalID is a GlobalID URI of a record, "gid://app/Model/id" (the "_aj_globalid"
	// marker). Rails loads the record when the job runs; Go gets the URI.
	GlobalID string
	// Decimal is a BigDecimal, as its exact decimal string. Rails 6.1 writes BigDecimal as a
	// plain JSON string (so it arrives in Go as a string); 7.1+ use BigDecimalSerializer,
	// which decodes to Decimal. Go writes Decimal as a plain string, which every Rails
	// version reads (as a String; convert with BigDecimal(x) in Ruby).
	Decimal string
	// Module is a Ruby Class or Module, by name (ModuleSerializer).
	Module string
	// Keywords are keyword arguments: as the last argument of middleware.PushActiveJob they reach
	// the Ruby job's perform as keywords (perform(..., greeting: "hi")).
	Keywords map[string]any
	// SymbolHash is a Hash whose keys are all Ruby Symbols ({user_id: 1}). A plain
	// map[string]any is a Hash with String keys.
	SymbolHash map[string]any
)

// Date is a Ruby Date (DateSerializer): a calendar day without a time or zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String returns the date as ISO 8601, "2024-02-29".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Time returns midnight of the date in loc.
func (d Date) Time(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// Duration is an ActiveSupport::Duration (DurationSerializer): 2.days + 3.hours is
// {Seconds: 183600, Parts: [{days 2} {hours 3}]}. The parts matter to Ruby: 1.month is not
// a fixed number of seconds.
type Duration struct {
	Seconds float64
	Parts   []DurationPart
}

// DurationPart is one unit of a Duration: Unit is "years", "months", "weeks", "days",
// "hours", "minutes" or "seconds".
type DurationPart struct {
	Unit   string
	Amount float64
}

// Std returns the duration as a time.Duration (by Seconds).
func (d Duration) Std() time.Duration { return time.Duration(d.Seconds * float64(time.Second)) }

// Range is a Ruby Range (RangeSerializer, Rails 7.0+; Rails 6.1 cannot read it).
type Range struct {
	Begin, End any
	ExcludeEnd bool
}

// Serialized is an "_aj_serialized" object of a serializer this package does not know (an
// application's custom serializer): its class and its other keys, decoded.
type Serialized struct {
	Serializer string
	Fields     map[string]any
}

const (
	ajGlobalID    = "_aj_globalid"
	ajSerialized  = "_aj_serialized"
	ajSymbolKeys  = "_aj_symbol_keys"
	ajRuby2Kw     = "_aj_ruby2_keywords"
	ajIndifferent = "_aj_hash_with_indifferent_access"
	serializerPfx = "ActiveJob::Serializers::"
	ajTimeLayout  = "2006-01-02T15:04:05.000000000Z07:00"
)

func isReservedKey(k string) bool {
	switch k {
	case ajGlobalID, ajSerialized, ajSymbolKeys, ajRuby2Kw, ajIndifferent, "_aj_symbol_keys_hash":
		return true
	}
	return false
}

// gidParts splits "gid://app/Model/id" into its three parts ("" when malformed).
func (g GlobalID) gidParts() (app, model, id string) {
	rest, ok := strings.CutPrefix(string(g), "gid://")
	if !ok {
		return "", "", ""
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		return "", "", ""
	}
	id, _, _ = strings.Cut(parts[2], "?") // drop GlobalID params
	return parts[0], parts[1], id
}

// App returns the application part of the URI ("app" in gid://app/Model/42).
func (g GlobalID) App() string { a, _, _ := g.gidParts(); return a }

// Model returns the model class name ("Model" in gid://app/Model/42).
func (g GlobalID) Model() string { _, m, _ := g.gidParts(); return m }

// ID returns the record id ("42" in gid://app/Model/42).
func (g GlobalID) ID() string { _, _, id := g.gidParts(); return id }
