package main

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A REDIS_URL that does not parse makes the sidecar fail with go-redis's parse error,
// which quotes the URL whole; main prints it. The password must not be in it.
func TestSidecarParseErrorHidesPassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cretPassw0rd"
	core, logs := observer.New(zap.DebugLevel)
	for _, url := range []string{"redis://:" + secret + "@redis:notaport/0", "redis://app:" + secret + "@re dis:6379/0"} {
		err := run(context.Background(), env(map[string]string{"REDIS_URL": url}), zap.New(core))
		if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
			t.Fatalf("%s: %v, want a REDIS_URL error", url, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, secret) || strings.Contains(strings.Join(fieldStrings(e.Context), " "), secret) {
			t.Errorf("log shows the password: %v", e)
		}
	}
}

func fieldStrings(fs []zap.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String
	}
	return out
}
