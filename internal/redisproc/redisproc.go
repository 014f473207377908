// Package redisproc runs a private redis-server for tests that must stop, kill or restart
// Redis: the chaos suite, the outbox's outage test. The server listens on a free loopback
// port and keeps an append-only file with fsync on every write (--appendonly yes
// --appendfsync always --save ""), as a production Redis that must not lose a job would, so
// a SIGKILL of Redis loses no acknowledged write and Restart brings every key back.
//
// # Torn append-only files
//
// A SIGKILL can land while redis-server writes to its append-only file, leaving the file's
// last transaction (the MULTI ... EXEC block holding one Lua script's writes) cut short.
// Redis 7.0 with its default aof-load-truncated yes then cuts the file after the last whole
// command, not before the block's MULTI, so the head of the torn block stays in the file.
// The server starts correctly, but the next write it appends lands inside that open block,
// and the restart after that replays the torn block's first writes with it: one Lua script
// half applied, for example a job pushed without the delivery marker set in the same call.
// (Valkey fixed the loader in valkey-io/valkey#4342; Redis 7.0.15, Debian 12's, has it.)
//
// So this package does what an operator running such a Redis should do: it runs the
// server with aof-load-truncated no, which refuses a torn file instead of half-repairing
// it, and before every start runs redis-check-aof --fix, which cuts a torn block off at its
// MULTI. AOFRepairs counts the files it had to cut.
package redisproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/redis/go-redis/v9"
)

// Server is a private redis-server on a fixed port and data directory. Its methods are safe
// for concurrent use.
type Server struct {
	tb    testing.TB
	dir   string
	port  int
	extra []string

	mu      sync.Mutex
	proc    *os.Process
	exited  chan struct{} // closed when proc has exited and been reaped
	repairs int
}

// Start starts a private redis-server, killed at the test's cleanup. Without redis-server
// or redis-check-aof the test fails in CI and is skipped elsewhere (testsuite.Unavailable).
// extra are redis-server arguments appended after the package's own (which they
// override), e.g. "--appendonly", "no" for a test that only needs a Redis of its own.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-check-aof"} {
		if _, err := exec.LookPath(bin); err != nil {
			testsuite.Unavailable(tb, "%s not installed: %v", bin, err)
		}
	}
	s := &Server{tb: tb, dir: tb.TempDir(), port: freePort(tb), extra: extra}
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

// Dir returns the server's data directory: its append-only files are in appendonlydir and
// its log is redis.log.
func (s *Server) Dir() string { return s.dir }

// AOFRepairs returns how many times a start found the append-only file torn (cut inside a
// command or a transaction by a kill) and cut it back to its last whole transaction.
func (s *Server) AOFRepairs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repairs
}

// PID returns the server's process id, or 0 when it is not running: for tests that stop
// and continue it (SIGSTOP, SIGCONT) to make Redis hang.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid
}

// Running reports whether the server process is up (it may not accept commands yet).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and reaps the process. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Signal(syscall.SIGKILL)
	<-s.exited
	s.proc = nil
}

// Restart kills the server if it runs and starts it again on the same port and directory;
// it returns when the server answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.StartAgain(); err != nil {
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
	if err := s.repairAOF(); err != nil {
		return err
	}
	s.mu.Lock()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--aof-load-truncated", "no", "--logfile", filepath.Join(s.dir, "redis.log")}, s.extra...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("redisproc: start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.proc, s.exited = cmd.Process, exited
	s.mu.Unlock()

	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redisproc: redis-server on %s exited while starting; the end of its log:\n%s", s.Addr(), s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisproc: redis-server on %s not ready: %w", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// repairAOF runs redis-check-aof --fix over the append-only files, if there are any: it
// cuts a torn last transaction off at its MULTI, where Redis 7.0's own truncation would
// leave its head behind (see the package documentation).
func (s *Server) repairAOF() error {
	manifest := filepath.Join(s.dir, "appendonlydir", "appendonly.aof.manifest")
	if _, err := os.Stat(manifest); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	check := exec.Command("redis-check-aof", "--fix", manifest)
	check.Stdin = bytes.NewReader([]byte("y\n")) // it asks before cutting
	out, err := check.CombinedOutput()
	if err != nil {
		return fmt.Errorf("redisproc: redis-check-aof --fix %s: %w\n%s", manifest, err, out)
	}
	if bytes.Contains(out, []byte("Successfully truncated")) {
		s.mu.Lock()
		s.repairs++
		s.mu.Unlock()
	}
	return nil
}

// logTail returns the last lines of the server's log.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
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
