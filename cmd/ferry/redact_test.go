package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
)

const secret = "s3cr3t-Pa55"

func TestPasswordNeverPrinted(t *testing.T) {
	t.Parallel()
	db := testsuite.RealRedis(t)
	for _, tt := range []struct {
		name string
		url  string
		code int
	}{
		// Nothing listens on port 1: a dial error.
		{"unreachable", "redis://:" + secret + "@127.0.0.1:1/0", exitError},
		// The test Redis has no password: it refuses AUTH.
		{"refused auth", "redis://ferrytest:" + secret + "@" + db.Addr + "/" + "0", exitError},
		{"unparsable", "redis://:" + secret + "@[::1/0", exitUsage},
		{"bad db", "redis://:" + secret + "@127.0.0.1:6379/notanumber", exitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, args := range [][]string{{"stats"}, {"--redis", tt.url, "queues"}, {"watch", "--count", "1"}} {
				r := ferry(t, tt.url, runOpts{}, args...)
				if r.code != tt.code {
					t.Fatalf("ferry %v: %s\nwant exit %d", args, r, tt.code)
				}
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Fatalf("password printed:\n%s", r)
				}
				if tt.code == exitError && !strings.Contains(r.stderr, redactedPassword) {
					t.Fatalf("stderr does not name the (redacted) server:\n%s", r.stderr)
				}
			}
		})
	}
	if got := redactURL("redis://user:" + secret + "@host:6379/2?password=" + secret); strings.Contains(got, secret) {
		t.Fatalf("redactURL = %s", got)
	}
}

// TestBinary builds the ferry command and runs it as a script would: REDIS_URL in the
// environment, standard input not a terminal.
func TestBinary(t *testing.T) {
	t.Parallel()
	testsuite.RequireRuby(t)
	db, _ := rubyDB(t)
	bin := filepath.Join(t.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runBin := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "REDIS_URL="+db.URL)
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer devnull.Close()
		cmd.Stdin = devnull
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	if code, out, _ := runBin("stats"); code != exitOK || !strings.Contains(out, "Retries") {
		t.Fatalf("stats: exit %d\n%s", code, out)
	}
	code, out, errs := runBin("retry", "--all")
	if code != exitRefused || strings.Contains(errs, "[y/N]") || out != "" {
		t.Fatalf("retry --all with stdin /dev/null: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, out, _ := runBin("retry", "--all", "--yes"); code != exitOK || !strings.Contains(out, "Retried 4 entries") {
		t.Fatalf("retry --all --yes: exit %d\n%s", code, out)
	}
	if code, _, _ := runBin("--bogus"); code != exitUsage {
		t.Fatalf("--bogus: exit %d", code)
	}
	if code, _, _ := runBin("retry", "ffffffffffffffffffffffff"); code != exitNotFound {
		t.Fatalf("unknown jid: exit %d", code)
	}
	if code, out, _ := runBin("--help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
}
