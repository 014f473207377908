package sidekiq_test

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
)

type argsPoint struct {
	X int    `json:"x"`
	Y string `json:"y,omitempty"`
}

// TestEncodeArgs: Go values arrive in Ruby as the same types: floats keep ".0", integers of
// any size stay exact, strings are not HTML-escaped, maps have sorted keys.
func TestEncodeArgs(t *testing.T) {
	t.Parallel()
	bigInt, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	var nilMap map[string]int
	var nilSlice []int
	tests := []struct {
		name string
		args []any
		want string
	}{
		{"nil args", nil, `[]`},
		{"empty args", []any{}, `[]`},
		{"whole floats keep .0", []any{3.0, float32(2), -0.5, 1e21}, `[3.0,2.0,-0.5,1e+21]`},
		{"float32 shortest form", []any{float32(0.1)}, `[0.1]`},
		{"int64 and uint64 extremes", []any{int64(math.MaxInt64), uint64(math.MaxUint64), int8(-128)}, `[9223372036854775807,18446744073709551615,-128]`},
		{"big.Int", []any{bigInt}, `[123456789012345678901234567890]`},
		{"json.Number verbatim", []any{json.Number("12345678901234567890123"), json.Number("1.50")}, `[12345678901234567890123,1.50]`},
		{"json.RawMessage verbatim", []any{json.RawMessage(`{"b":1,"a":2}`)}, `[{"b":1,"a":2}]`},
		{"unicode and <>& unescaped", []any{"ü 日本 <a href=\"x\">&</a>"}, `["ü 日本 <a href=\"x\">&</a>"]`},
		{"control characters escaped", []any{"a\nb\t\x01"}, `["a\nb\t\u0001"]`},
		{"nil, bool, nil map and slice", []any{nil, true, false, nilMap, nilSlice}, `[null,true,false,null,null]`},
		{"maps sorted, int keys", []any{map[string]any{"b": 1, "a": []any{2.0}}, map[int]string{2: "x", 10: "y"}}, `[{"a":[2.0],"b":1},{"10":"y","2":"x"}]`},
		{"pointers followed", []any{ptr(7), (*int)(nil)}, `[7,null]`},
		{"arrays", []any{[2]string{"a", "b"}}, `[["a","b"]]`},
		{"bytes as base64", []any{[]byte("hi")}, `["aGk="]`},
		{"structs through encoding/json without HTML escaping", []any{argsPoint{X: 1, Y: "<&>"}}, `[{"x":1,"y":"<&>"}]`},
		{"time via MarshalJSON", []any{time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)}, `["2026-11-22T01:02:03Z"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := sidekiq.EncodeArgs(tc.args)
			if err != nil {
				t.Fatalf("EncodeArgs: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("EncodeArgs = %s, want %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("%s is not valid JSON", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestEncodeArgsErrors: values JSON cannot carry are errors that name the argument.
func TestEncodeArgsErrors(t *testing.T) {
	t.Parallel()
	cyclic := []any{nil}
	cyclic[0] = cyclic
	tests := []struct {
		name string
		args []any
		want string
	}{
		{"NaN", []any{1, math.NaN()}, "arg 1"},
		{"infinity", []any{math.Inf(-1)}, "arg 0"},
		{"invalid json.Number", []any{json.Number("12abc")}, "invalid json.Number"},
		{"invalid json.RawMessage", []any{json.RawMessage(`{"a":`)}, "invalid json.RawMessage"},
		{"unsupported map key", []any{map[float64]int{1.5: 1}}, "unsupported map key"},
		{"cycle", cyclic, "nested too deeply"},
		{"channel", []any{make(chan int)}, "arg 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := sidekiq.EncodeArgs(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EncodeArgs = %s, %v; want an error with %q", got, err, tc.want)
			}
		})
	}
}
