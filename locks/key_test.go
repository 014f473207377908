package locks_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ferryhq/ferry/locks"
	"github.com/ferryhq/ferry/sidekiq"
)

// inputsOf parses a JSON object the way a payload's args[0] is read.
func inputsOf(t *testing.T, obj string) map[string]json.RawMessage {
	t.Helper()
	job, err := sidekiq.ParseJobString(`{"class":"W","jid":"j","queue":"default","args":[` + obj + `]}`)
	if err != nil {
		t.Fatal(err)
	}
	in, err := locks.JobInputs(job)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestKeyCanonicalString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ns, obj string
		names         []string
		canonical     string
	}{
		{"all inputs sorted", "Report", `{"b":2,"a":"x"}`, nil, "Report\x00a\x00\"x\"\x00b\x002\x00"},
		{"locale and tz left out", "Report", `{"a":1,"locale":"fr","tz":"UTC"}`, nil, "Report\x00a\x001\x00"},
		{"locale when asked for", "Report", `{"a":1,"locale":"fr"}`, []string{"locale", "a"}, "Report\x00a\x001\x00locale\x00\"fr\"\x00"},
		{"subset", "Report", `{"a":1,"b":2}`, []string{"b"}, "Report\x00b\x002\x00"},
		{"missing name is empty", "Report", `{"a":1}`, []string{"z"}, "Report\x00z\x00\x00"},
		{"whitespace compacted", "R", `{"a": [1, 2], "o": {"k" : true}}`, nil, "R\x00a\x00[1,2]\x00o\x00{\"k\":true}\x00"},
		{"unicode and html kept verbatim", "R", `{"s":"héllo <a>&"}`, nil, "R\x00s\x00\"héllo <a>&\"\x00"},
		{"escapes kept verbatim", "R", `{"s":"\u003c"}`, nil, "R\x00s\x00\"\\u003c\"\x00"},
		{"no inputs", "R", `{}`, nil, "R\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := inputsOf(t, tt.obj)
			want := sha(tt.canonical)
			if got := locks.Key(tt.ns, in, tt.names); got != locks.QueueKeyPrefix+want {
				t.Errorf("Key = %s, want %s%s", got, locks.QueueKeyPrefix, want)
			}
			if got := locks.WorkerKey(tt.ns, in, tt.names); got != locks.WorkerKeyPrefix+want {
				t.Errorf("WorkerKey = %s, want %s%s", got, locks.WorkerKeyPrefix, want)
			}
		})
	}
}

func TestKeyDistinguishes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		a, b   string
		nsA    string
		nsB    string
		equal  bool
		namesB []string
	}{
		{"key order does not matter", `{"a":1,"b":2}`, `{"b":2,"a":1}`, "W", "W", true, nil},
		{"42 vs \"42\"", `{"a":42}`, `{"a":"42"}`, "W", "W", false, nil},
		{"42 vs 42.0", `{"a":42}`, `{"a":42.0}`, "W", "W", false, nil},
		{"locale differs but is excluded", `{"a":1,"locale":"en"}`, `{"a":1,"locale":"fr"}`, "W", "W", true, nil},
		{"tz differs but is excluded", `{"a":1,"tz":"UTC"}`, `{"a":1}`, "W", "W", true, nil},
		{"namespace matters", `{"a":1}`, `{"a":1}`, "W", "V", false, nil},
		{"shared namespace, other inputs ignored", `{"a":1,"x":1}`, `{"a":1,"y":2}`, "S", "S", true, []string{"a"}},
		{"unicode value differs", `{"a":"é"}`, `{"a":"e"}`, "W", "W", false, nil},
		{"name/value boundary", `{"ab":"c"}`, `{"a":"bc"}`, "W", "W", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ka := locks.Key(tt.nsA, inputsOf(t, tt.a), tt.namesB)
			kb := locks.Key(tt.nsB, inputsOf(t, tt.b), tt.namesB)
			if (ka == kb) != tt.equal {
				t.Errorf("keys %s and %s: equal = %v, want %v", ka, kb, ka == kb, tt.equal)
			}
		})
	}
}

func TestJobInputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    string
		wantErr error
		n       int
	}{
		{`[]`, nil, 0},
		{`[{"a":1,"b":[1]}]`, nil, 2},
		{`[1,2]`, locks.ErrNoInputs, 0},
		{`["x"]`, locks.ErrNoInputs, 0},
	}
	for _, tt := range tests {
		job, err := sidekiq.ParseJobString(`{"class":"W","jid":"j","queue":"default","args":` + tt.args + `}`)
		if err != nil {
			t.Fatal(err)
		}
		in, err := locks.JobInputs(job)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("args %s: err = %v, want %v", tt.args, err, tt.wantErr)
		}
		if len(in) != tt.n {
			t.Errorf("args %s: %d inputs, want %d", tt.args, len(in), tt.n)
		}
	}
}
