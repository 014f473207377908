package redact

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/5", "redis://127.0.0.1:6379/5"},
		{"redis://:s3cret@127.0.0.1:6379/5", "redis://:xxxxx@127.0.0.1:6379/5"},
		{"redis://default:s3cret@host:6379", "redis://default:xxxxx@host:6379"},
		{"rediss://user:p%40ss@host:6380/0?dial_timeout=3s", "rediss://user:xxxxx@host:6380/0?dial_timeout=3s"},
		{"redis://user@host:6379", "redis://user@host:6379"},
		{"postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres:xxxxx@127.0.0.1:5432/test?sslmode=disable"},
		{"postgres://127.0.0.1/test?password=s3cret&sslmode=disable", "postgres://127.0.0.1/test?password=xxxxx&sslmode=disable"},
		// Does not parse (bad port, a space, '#' and '@' unescaped): masked all the same.
		{"redis://:s3cret@host:notaport/0", "redis://:xxxxx@host:notaport/0"},
		{"redis://user:s3 cret@ho st:6379/0", "redis://user:xxxxx@ho st:6379/0"},
		{"redis://:pa@ss#w/rd@host:6379/0", "redis://:xxxxx@host:6379/0"},
		{"", ""},
		{"not a url", "not a url"},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The error go-redis returns for a URL that does not parse quotes it whole, password and
// all: Error masks it and keeps the chain.
func TestErrorOfParseURL(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"redis://:s3cret@host:notaport/0", "redis://u:s3cret@ho st:6379/0", "redis://:p%2Fss@host:x/0"} {
		_, err := redis.ParseURL(raw)
		if err == nil {
			t.Fatalf("%s parsed", raw)
		}
		red := Error(err, raw)
		for _, secret := range []string{"s3cret", "p%2Fss", "p/ss"} {
			if strings.Contains(red.Error(), secret) {
				t.Errorf("redacted error %q still holds %q", red, secret)
			}
		}
		if !strings.Contains(red.Error(), Mask) {
			t.Errorf("redacted error %q: no mask, so nothing shows a password was there", red)
		}
		if !errors.Is(red, err) {
			t.Errorf("redacted error does not match the original with errors.Is")
		}
	}
}

func TestErrorKeepsChainAndLeavesCleanErrors(t *testing.T) {
	t.Parallel()
	const raw = "redis://:hunter22@host:6379/0"
	wrapped := errors.Join(errors.New("dial host: auth hunter22 refused"), io.EOF)
	red := Error(wrapped, raw)
	if strings.Contains(red.Error(), "hunter22") || !errors.Is(red, io.EOF) {
		t.Fatalf("Error = %q (is EOF: %v)", red, errors.Is(red, io.EOF))
	}
	clean := errors.New("connection refused")
	if Error(clean, raw) != clean {
		t.Fatal("an error without the password was wrapped")
	}
	if Error(nil, raw) != nil {
		t.Fatal("Error(nil) is not nil")
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	const raw = "postgres://app:Tr0ub4dor@db:5432/prod"
	got := String("cannot reach "+raw+" (user app, password Tr0ub4dor)", raw)
	want := "cannot reach postgres://app:xxxxx@db:5432/prod (user app, password xxxxx)"
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got := String("no url here", ""); got != "no url here" {
		t.Fatalf("String with no URL = %q", got)
	}
}
