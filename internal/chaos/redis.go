// Package chaos holds the fault-injection suite for Ferry (issue 8).
//
// So far it provides a private, restartable redis-server (this file). The
// server runs with --appendonly yes --appendfsync always and --save "" in a
// temp dir, so a SIGKILL of Redis itself loses no acknowledged write and a
// restart on the same dir brings every job back. The workload, worker
// processes, Ruby peers and the accounting of issue 8 are not written yet.
package chaos

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/testutil"
)

// redisServer is a private redis-server on a fixed port and AOF dir.
type redisServer struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
}

// freePort asks the kernel for an unused loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedis starts a private redis-server; it is killed at test cleanup.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testutil.Unavailable(t, "redis-server not installed: %v", err)
	}
	s := &redisServer{t: t, dir: t.TempDir(), port: freePort(t)}
	s.start()
	t.Cleanup(func() { s.kill() })
	return s
}

// Addr returns host:port of the server.
func (s *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s not ready: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and reaps the process.
func (s *redisServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// restart SIGKILLs the server and starts it again on the same port and dir.
func (s *redisServer) restart() {
	s.kill()
	s.start()
}
