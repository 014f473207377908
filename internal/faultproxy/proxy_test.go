package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer accepts connections and echoes each line back.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err == nil && line != "ping\n" {
		t.Fatalf("echo = %q", line)
	}
	return err
}

func TestProxy(t *testing.T) {
	t.Parallel()
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if err := roundTrip(t, c, r); err != nil {
		t.Fatalf("forwarding: %v", err)
	}

	p.SetLatency(100 * time.Millisecond)
	start := time.Now()
	if err := roundTrip(t, c, r); err != nil {
		t.Fatalf("with latency: %v", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("latency not applied both ways: %v", el)
	}
	p.SetLatency(0)

	if n := p.CutAll(); n != 2 {
		t.Fatalf("CutAll cut %d conns, want 2 (client and upstream side)", n)
	}
	if err := roundTrip(t, c, r); err == nil {
		t.Fatal("round trip succeeded after CutAll")
	}

	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := roundTrip(t, c2, bufio.NewReader(c2)); err != nil {
		t.Fatalf("new conn after cut: %v", err)
	}
}
