package redisproc_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/redisproc"
)

// pushWithMarker is the shape of every guarded push: two writes in one Lua call, which
// Redis logs to the append-only file as one MULTI ... EXEC block.
var pushWithMarker = redis.NewScript(`redis.call("LPUSH", KEYS[1], ARGV[1])
redis.call("SET", KEYS[2], ARGV[1])
return 1`)

func push(t *testing.T, srv *redisproc.Server, jid string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := pushWithMarker.Run(context.Background(), rdb, []string{"queue", "marker:" + jid}, jid).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestTornTransactionNeverReplayed: a kill cuts the append-only file inside the last Lua
// call's MULTI ... EXEC block. After a restart that call is wholly absent, and it stays
// absent after the next write and restart: with Redis 7.0's own truncation
// (aof-load-truncated yes) the second restart brings back the torn block's LPUSH without
// its marker, which is how the outbox once delivered a job twice.
func TestTornTransactionNeverReplayed(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	push(t, srv, "a")
	push(t, srv, "b")
	srv.Kill()

	// Cut 20 bytes: the whole EXEC (14 bytes) and the end of b's SET, as a kill in the
	// middle of the write would.
	incr, err := filepath.Glob(filepath.Join(srv.Dir(), "appendonlydir", "*.incr.aof"))
	if err != nil || len(incr) != 1 {
		t.Fatalf("incr files %v, %v: want one", incr, err)
	}
	fi, err := os.Stat(incr[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(incr[0], fi.Size()-20); err != nil {
		t.Fatal(err)
	}

	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if n := srv.AOFRepairs(); n != 1 {
		t.Fatalf("AOFRepairs = %d after a torn file, want 1", n)
	}
	want(t, srv, []string{"a"}, []string{"marker:a"})
	push(t, srv, "c")
	srv.Kill()
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if n := srv.AOFRepairs(); n != 1 {
		t.Fatalf("AOFRepairs = %d after a clean kill, want still 1", n)
	}
	want(t, srv, []string{"c", "a"}, []string{"marker:a", "marker:c"})
}

func want(t *testing.T, srv *redisproc.Server, queue, markers []string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	got, err := rdb.LRange(ctx, "queue", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, queue) {
		t.Fatalf("queue = %v, want %v", got, queue)
	}
	keys, err := rdb.Keys(ctx, "marker:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, markers) {
		t.Fatalf("markers = %v, want %v", keys, markers)
	}
}

// TestRestartKeepsData: a clean kill and restart keeps every write, with nothing to repair.
func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	push(t, srv, "a")
	srv.Restart()
	want(t, srv, []string{"a"}, []string{"marker:a"})
	if srv.AOFRepairs() != 0 {
		t.Fatalf("AOFRepairs = %d after a clean restart, want 0", srv.AOFRepairs())
	}
}

// TestStartReportsEarlyExit: a server that cannot start (here its port is taken) is
// reported with the end of its log as soon as it exits, not after the wait for PING.
func TestStartReportsEarlyExit(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	srv.Kill()
	ln, err := net.Listen("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = srv.StartAgain()
	if err == nil || !strings.Contains(err.Error(), "exited while starting") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("StartAgain with the port taken: %v, want an early exit with the log's reason", err)
	}
	if srv.Running() {
		t.Fatal("Running() after the server exited")
	}
}
