package rediskey

import (
	"strings"
	"testing"
)

func TestPart(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxPlain+1)
	tests := []struct {
		name  string
		in    string
		plain bool
	}{
		{"sidekiq jid", "2f1a7c3e9b8d4c5a6e7f8091", true},
		{"uuid", "9a2b6e1c-4f3d-4b8a-9c7e-1d2f3a4b5c6d", true},
		{"longest plain", long[:MaxPlain], true},
		{"too long", long, false},
		{"empty", "", false},
		{"colon", "queue:critical", false},
		{"looks hashed", HashedPrefix + strings.Repeat("0", 64), false},
		{"glob", "abc*", false},
		{"hash tag", "{x}", false},
		{"newline", "abc\n", false},
		{"non-ascii", "jïd", false},
		{"megabyte", strings.Repeat("x", 1<<20), false},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := Part(tt.in)
		if Plain(tt.in) != tt.plain {
			t.Errorf("%s: Plain = %v, want %v", tt.name, !tt.plain, tt.plain)
		}
		if tt.plain && got != tt.in {
			t.Errorf("%s: Part = %q, want the value itself", tt.name, got)
		}
		if !tt.plain {
			rest, ok := strings.CutPrefix(got, HashedPrefix)
			if !ok || len(rest) != 64 || strings.Trim(rest, "0123456789abcdef") != "" {
				t.Errorf("%s: Part = %q, want %s<64 hex>", tt.name, got, HashedPrefix)
			}
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s give the same part %q", tt.name, other, got)
		}
		seen[got] = tt.name
	}
	if Part("x:y") != Part("x:y") {
		t.Error("Part is not deterministic")
	}
}
