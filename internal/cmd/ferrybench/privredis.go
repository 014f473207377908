package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// privateRedis is a redis-server that ferrybench started for itself, so INFO's CPU and
// command counters hold only the work of the workers it measures: on a Redis shared with a
// test suite or other programs they also hold theirs.
type privateRedis struct {
	cmd  *exec.Cmd
	dir  string
	addr string
	done chan struct{}
}

// startPrivateRedis starts bin on a free loopback port, without persistence (the shared
// test Redis of this project runs the same way), and checks that the server answering on
// the port is the process it started.
func startPrivateRedis(ctx context.Context, bin string) (*privateRedis, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferrybench-redis")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 { // another program may take the free port before redis-server binds it
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		r := &privateRedis{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
		r.cmd = exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", "")
		out := &tailBuffer{}
		r.cmd.Stdout, r.cmd.Stderr = out, out
		// Pdeathsig: a ferrybench that dies leaves no server behind (best effort: Linux sends
		// it when the thread that started the server ends).
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		if err := r.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		go func() { _ = r.cmd.Wait(); close(r.done) }()
		if lastErr = r.waitOwn(ctx); lastErr == nil {
			return r, nil
		}
		r.kill()
		lastErr = fmt.Errorf("%w: %s", lastErr, strings.TrimSpace(out.String()))
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("starting %s: %w", bin, lastErr)
}

// waitOwn waits until the server answers on r.addr with r.cmd's process id.
func (r *privateRedis) waitOwn(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return fmt.Errorf("redis-server exited")
		default:
		}
		if txt, err := c.Info(ctx, "all").Result(); err == nil {
			s, err := parseInfo(txt)
			if err != nil {
				return err
			}
			if s.PID != r.cmd.Process.Pid {
				return fmt.Errorf("%s is served by process %d, not by the redis-server started (%d)", r.addr, s.PID, r.cmd.Process.Pid)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server did not answer on %s within 10 s", r.addr)
}

// URL is database 14 of the private server.
func (r *privateRedis) URL() string { return "redis://" + r.addr + "/14" }

// Close stops the server and removes its directory.
func (r *privateRedis) Close() {
	r.kill()
	os.RemoveAll(r.dir)
}

func (r *privateRedis) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
