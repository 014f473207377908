package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
)

// The quick start shows which Redis it uses, and fails with the parse error of a bad
// REDIS_URL: neither may show the password. The unfixed quick start printed
// "Redis: redis://:<password>@..." and go-redis's parse error quotes the whole URL.
func TestQuickstartHidesRedisPassword(t *testing.T) {
	const secret = "s3cretPassw0rd"
	r := testsuite.RealRedis(t)
	db := strconv.Itoa(r.DB)
	for _, tc := range []struct {
		url     string
		wantErr bool
	}{
		{url: "redis://:" + secret + "@" + r.Addr + "/" + db}, // the test Redis takes any password
		{url: "redis://:" + secret + "@" + r.Addr + "x:bad/" + db, wantErr: true},
	} {
		t.Setenv("REDIS_URL", tc.url)
		var out bytes.Buffer
		err := run(context.Background(), &out)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: error %v, want an error: %v\n%s", tc.url, err, tc.wantErr, out.String())
		}
		if strings.Contains(out.String(), secret) || (err != nil && strings.Contains(err.Error(), secret)) {
			t.Errorf("password shown:\noutput: %s\nerror: %v", out.String(), err)
		}
		if !tc.wantErr && !strings.Contains(out.String(), "Redis: redis://:xxxxx@"+r.Addr) {
			t.Errorf("output does not say which Redis, password masked:\n%s", out.String())
		}
	}
}
