package jsonwire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-7`, `-12.0E+3`, `"a\u00e9\n"`,
		`{"a":[1,{"b":null}],"c":"<>&"}`, ` [ 1 , 2 ] `, `"\ud83d\ude00"`,
		``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `01`, `1.`, `.5`, `-`, `1e`,
		`tru`, `nul`, `"abc`, `"\x"`, `"\u12"`, "\"a\x01\"", `[1 2]`, `{"a":1}{}`, `1 2`,
		strings.Repeat("[", 20) + strings.Repeat("]", 20),
	}
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func TestValidRejectsTooDeepNesting(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	if Valid([]byte(deep)) {
		t.Fatalf("nesting of %d accepted, MaxDepth is %d", MaxDepth+1, MaxDepth)
	}
	ok := strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)
	if !Valid([]byte(ok)) {
		t.Fatalf("nesting of %d refused", MaxDepth-1)
	}
}

func TestScanObjectMembers(t *testing.T) {
	t.Parallel()
	data := []byte(` {"class":"W", "args":[1, "x"] ,"n":{"a":1},"e":"\u00e9"} `)
	var keys, values []string
	err := ScanObject(data, func(k, v []byte) error {
		keys = append(keys, string(k))
		values = append(values, string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantK := []string{`"class"`, `"args"`, `"n"`, `"e"`}
	wantV := []string{`"W"`, `[1, "x"]`, `{"a":1}`, `"\u00e9"`}
	if strings.Join(keys, "|") != strings.Join(wantK, "|") || strings.Join(values, "|") != strings.Join(wantV, "|") {
		t.Fatalf("keys %q values %q; want %q %q", keys, values, wantK, wantV)
	}
}

func TestScanObjectErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, msg string
	}{
		{``, "empty input"},
		{`[1]`, "top-level value is array"},
		{`"s"`, "top-level value is string"},
		{`x`, "unexpected character"},
		{`{"a":1} x`, "after the top-level object"},
		{`{"a":1`, "unterminated object"},
		{`{1:2}`, "expected a string key"},
		{`{"a" 1}`, "expected ':'"},
		{`{"a":1;}`, "expected ',' or '}'"},
	}
	for _, c := range cases {
		err := ScanObject([]byte(c.in), func(k, v []byte) error { return nil })
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ScanObject(%q) = %v, want a SyntaxError containing %q", c.in, err, c.msg)
		}
	}
	stop := errors.New("stop")
	if err := ScanObject([]byte(`{"a":1,"b":2}`), func(k, v []byte) error { return stop }); err != stop {
		t.Errorf("callback error not returned: %v", err)
	}
}

func TestKindOfAndUnquote(t *testing.T) {
	t.Parallel()
	kinds := map[string]Kind{`null`: Null, `true`: Bool, `false`: Bool, `-1`: Number, `7`: Number,
		`"s"`: String, `[]`: Array, `{}`: Object, ``: Invalid, `x`: Invalid}
	for in, want := range kinds {
		if got := KindOf([]byte(in)); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", in, got, want)
		}
	}
	unq := map[string]string{`"plain"`: "plain", `"a\"b\\c\n"`: "a\"b\\c\n", `"\u00e9t\u00e9"`: "été", `"été"`: "été", `""`: ""}
	for in, want := range unq {
		if got, err := Unquote([]byte(in)); err != nil || got != want {
			t.Errorf("Unquote(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Unquote([]byte(`abc`)); err == nil {
		t.Error("Unquote of a non-string succeeded")
	}
}

func TestAppendStringIsRubyStyle(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"<a href=\"x\">&amp;</a>": `"<a href=\"x\">&amp;</a>"`,
		"été 😀":                   `"été 😀"`,
		"tab\tnl\ncr\rbs\\":       `"tab\tnl\ncr\rbs\\"`,
		"\x00\x1f\b\f":            `"\u0000\u001f\b\f"`,
		"bad\xffutf8":             "\"bad\ufffdutf8\"",
	}
	for in, want := range cases {
		got := string(AppendString(nil, in))
		if got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("AppendString(%q) wrote invalid JSON %s: %v", in, got, err)
		}
	}
}

func TestAppendFloatAlwaysLooksLikeAFloat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {-3, "-3.0"}, {1.5, "1.5"}, {1795352598.824373, "1795352598.824373"},
		{1e20, "1e+20"}, {1.25e-7, "1.25e-07"}, {123456789012345, "123456789012345.0"},
	}
	for _, c := range cases {
		got := string(AppendFloat(nil, c.in))
		if got != c.want {
			t.Errorf("AppendFloat(%v) = %s, want %s", c.in, got, c.want)
		}
		var back float64
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != c.in {
			t.Errorf("AppendFloat(%v) = %s reads back as %v, %v", c.in, got, back, err)
		}
	}
}
