package logcap

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abcde", 5, "abcde"},
		{"long", "abcdefgh", 5, "abcde…(8 bytes)"},
		{"rune boundary", "aé" + strings.Repeat("x", 10), 2, "a…(13 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Cut(tt.in, tt.max)
			if got != tt.want {
				t.Fatalf("Cut(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("invalid UTF-8: %q", got)
			}
		})
	}
}

func TestFieldsAreBounded(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("C", 1<<20)
	if f := String("class", huge); len(f.String) > Max+32 {
		t.Fatalf("String kept %d bytes", len(f.String))
	}
	if f := Error(errors.New(huge)); len(f.String) > 4*Max+32 {
		t.Fatalf("Error kept %d bytes", len(f.String))
	}
}
