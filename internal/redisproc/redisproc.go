// Package redisproc runs a private redis-server for tests that must stop, kill or restart
// Redis: the chaos suite, the outbox's outage test. The server listens on a free loopback
// port and keeps an append-only file with fsync on every write (--appendonly yes
// --appendfsync always --save ""), as a production Redis that must not lose a job would, so
// a SIGKILL of Redis loses no acknowledged write and Restart brings every key back.
package redisproc

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/testutil"
)

// Server is a private redis-server on a fixed port and data directory. Its methods are safe
// for concurrent use.
type Server struct {
	tb   testing.TB
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a private redis-server, killed at the test's cleanup. Without a
// redis-server binary the test fails in CI and is skipped elsewhere (testutil.Unavailable).
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testutil.Unavailable(tb, "redis-server not installed: %v", err)
	}
	s := &Server{tb: tb, dir: tb.TempDir(), port: freePort(tb)}
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Kill)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL returns a redis:// URL of the server, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Running reports whether the server process is up (it may not accept commands yet).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Kill sends SIGKILL and reaps the process. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server if it runs and starts it again on the same port and directory;
// it returns when the server answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.tb.Fatal(err)
	}
}

// StartAgain starts a killed server (same port and directory) and waits for PING. Unlike
// Restart it returns the error, so it can be called from a goroutine other than the test's.
func (s *Server) StartAgain() error {
	s.Kill()
	return s.start()
}

func (s *Server) start() error {
	s.mu.Lock()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("redisproc: start redis-server: %w", err)
	}
	s.cmd = cmd
	s.mu.Unlock()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer rdb.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisproc: redis-server on %s not ready: %w", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort asks the kernel for an unused loopback port.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redisproc: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
