package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A REDIS_URL that does not parse fails the example with go-redis's parse error, which
// quotes the URL whole; main prints it. The password must not be in it.
func TestPeriodicExampleHidesPassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cretPassw0rd"
	var out bytes.Buffer
	err := run(context.Background(), "redis://:"+secret+"@redis:notaport/0", 1, &out)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("run: %v, want a REDIS_URL error", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(out.String(), secret) {
		t.Fatalf("password shown: error %v, output %q", err, out.String())
	}
}
