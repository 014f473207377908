package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// ferrybench fails with the parse error of a bad -redis URL, and prints the default URL
// (from REDIS_URL) in its usage: neither may show the password.
func TestBenchHidesRedisPassword(t *testing.T) {
	const secret = "s3cretPassw0rd"
	if _, err := openBenchRedis("redis://:" + secret + "@host:notaport/14"); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("parse error %v: want an error without the password", err)
	}
	t.Setenv("REDIS_URL", "redis://app:"+secret+"@127.0.0.1:6379/0")
	if u := defaultRedisURL(); !strings.Contains(u, secret) || !strings.Contains(u, "app:") || !strings.HasSuffix(u, "/14") {
		t.Errorf("default URL %q: want REDIS_URL's server and credentials, database 14", u)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	if u := redisFlag(fs); *u != defaultRedisURL() {
		t.Errorf("-redis defaults to %q, want %q", *u, defaultRedisURL())
	}
	fs.PrintDefaults()
	if strings.Contains(out.String(), secret) || !strings.Contains(out.String(), "app:xxxxx@127.0.0.1:6379/14") {
		t.Errorf("usage shows the password, or no masked default:\n%s", out.String())
	}
}
