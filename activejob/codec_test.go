package activejob_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/activejob"
)

// TestEncodeArgumentsRoundTrip: every Go type the codec writes comes out as Rails 6.1
// serializes the Ruby value, and decodes back to the same Go value.
func TestEncodeArgumentsRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	in := []any{
		42, uint8(7), 3.0, "s", nil, true, activejob.Symbol("paid"), at,
		activejob.Date{Year: 2024, Month: 2, Day: 29}, activejob.GlobalID("gid://ferry/User/7"),
		activejob.Duration{Seconds: 90}, activejob.Module("String"),
		map[string]int{"total": 3}, activejob.SymbolHash{"a": []string{"x"}},
		activejob.Keywords{"greeting": "hi"},
	}
	raw, err := activejob.EncodeArguments(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{
		`[42,7,3.0,"s",null,true,{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"paid"}`,
		`{"_aj_serialized":"ActiveJob::Serializers::TimeSerializer","value":"2024-01-02T03:04:05.000006000Z"}`,
		`{"_aj_serialized":"ActiveJob::Serializers::DurationSerializer","value":90,"parts":[[{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"seconds"},90]]}`,
		`{"total":3,"_aj_symbol_keys":[]}`, `{"a":["x"],"_aj_symbol_keys":["a"]}`,
		`{"greeting":"hi","_aj_ruby2_keywords":["greeting"]}]`,
	} {
		if !strings.Contains(string(raw), frag) {
			t.Errorf("encoding lacks %s:\n%s", frag, raw)
		}
	}
	back, err := activejob.DecodeArguments(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back[0] != int64(42) || back[2] != 3.0 || back[6] != activejob.Symbol("paid") || !back[7].(time.Time).Equal(at) ||
		!reflect.DeepEqual(back[14], activejob.Keywords{"greeting": "hi"}) {
		t.Fatalf("round trip: %#v", back)
	}
	for _, bad := range []any{struct{}{}, map[int]int{1: 1}, map[string]any{"_aj_globalid": 1}} {
		if _, err := activejob.EncodeArguments([]any{bad}); err == nil {
			t.Errorf("%#v must be refused", bad)
		}
	}
}

// ExampleEncodeArguments shows the arguments of perform_later(42, :paid, greeting: "hi").
func ExampleEncodeArguments() {
	raw, err := activejob.EncodeArguments([]any{42, activejob.Symbol("paid"), activejob.Keywords{"greeting": "hi"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(raw))
	back, _ := activejob.DecodeArguments(raw)
	fmt.Printf("%#v\n", back[1])
	// Output:
	// [42,{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"paid"},{"greeting":"hi","_aj_ruby2_keywords":["greeting"]}]
	// "paid"
}
