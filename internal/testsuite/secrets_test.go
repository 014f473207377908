package testsuite

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// fatalTB records the message of a Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A REDIS_URL that does not parse fails RealRedis with go-redis's parse error, which quotes
// the URL whole: the password must be masked in the failure message.
func TestRealRedisHidesPassword(t *testing.T) {
	const secret = "s3cretPassw0rd"
	t.Setenv("REDIS_URL", "redis://:"+secret+"@127.0.0.1:notaport")
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		RealRedis(tb)
	}()
	<-done
	if tb.msg == "" || strings.Contains(tb.msg, secret) || !strings.Contains(tb.msg, "xxxxx") {
		t.Fatalf("RealRedis failed with %q: want the error, password masked", tb.msg)
	}
}

// RunRuby's error quotes Ruby's stderr, which may hold REDIS_URL.
func TestRunRubyHidesPassword(t *testing.T) {
	t.Parallel()
	RequireRuby(t)
	const secret = "s3cretPassw0rd"
	_, err := RunRuby("redis://:"+secret+"@127.0.0.1:1/0", `warn ENV.fetch("REDIS_URL"); exit 1`)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "redis://:xxxxx@127.0.0.1:1/0") {
		t.Fatalf("RunRuby error %v: want Ruby's stderr, password masked", err)
	}
}
