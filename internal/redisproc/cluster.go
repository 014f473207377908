package redisproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/redis/go-redis/v9"
)

// Cluster is a private Redis Cluster of three masters (no replicas) on free loopback
// ports, for tests of what Ferry does on a cluster. It is made by StartCluster and torn
// down at the test's cleanup.
type Cluster struct {
	addrs []string
	procs []*exec.Cmd
}

// clusterNodes is the size of the cluster StartCluster makes: the fewest masters
// redis-cli --cluster create accepts.
const clusterNodes = 3

// StartCluster starts three redis-server processes with cluster-enabled yes, joins them
// with redis-cli --cluster create (16384 slots split among three masters), waits until
// every node reports cluster_state:ok and knows the others, and kills them at cleanup.
// Without redis-server or redis-cli the test fails in CI and is skipped elsewhere.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			testsuite.Unavailable(tb, "%s not installed: %v", bin, err)
		}
	}
	dir := tb.TempDir()
	c := &Cluster{}
	tb.Cleanup(c.kill)
	for _, port := range clusterPorts(tb, clusterNodes) {
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", nodeDir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--appendonly", "no", "--save", "",
			"--logfile", filepath.Join(nodeDir, "redis.log"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			tb.Fatalf("redisproc: start cluster node: %v", err)
		}
		c.procs = append(c.procs, cmd)
		c.addrs = append(c.addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	for _, addr := range c.addrs {
		if err := waitPing(addr); err != nil {
			tb.Fatal(err)
		}
	}
	args := append([]string{"--cluster", "create"}, c.addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redisproc: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitOK(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// Addrs returns the nodes' host:port addresses.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Client returns a cluster client for the nodes, closed at the test's cleanup.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func (c *Cluster) kill() {
	for _, cmd := range c.procs {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	c.procs = nil
}

// waitOK waits until every node says the cluster is ok, knows every node and serves all
// 16384 slots: after that, a client sees the same map on every node.
func (c *Cluster) waitOK() error {
	deadline := time.Now().Add(time.Minute)
	for _, addr := range c.addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := rdb.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(clusterNodes)) &&
				strings.Contains(info, "cluster_slots_ok:16384") {
				break
			}
			if time.Now().After(deadline) {
				_ = rdb.Close()
				return fmt.Errorf("redisproc: cluster node %s not ok after a minute: %v\n%s", addr, err, info)
			}
			time.Sleep(50 * time.Millisecond) // no event announces a converged cluster
		}
		_ = rdb.Close()
	}
	return nil
}

// waitPing waits until the server at addr answers PING.
func waitPing(addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisproc: redis-server on %s not ready: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterPorts returns n loopback ports that are free, each with its cluster bus port
// (port + 10000) free too.
func clusterPorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100 {
			tb.Fatal("redisproc: no free port pairs for a cluster")
		}
		p := freePort(tb)
		if p+10000 > 65535 || slices.Contains(ports, p) || !portFree(p+10000) {
			continue
		}
		ports = append(ports, p)
	}
	return ports
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}
