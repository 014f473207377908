package testsuite

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ruby scripts run in children forked from one Ruby process per release (and per ActiveJob
// setting) that has loaded Sidekiq once: a fork costs milliseconds where starting Ruby and
// loading Sidekiq (and, for 7.x's ActiveJob, Rails) costs 0.3 to 3 s on a busy machine, and
// the suites run several hundred scripts. Each child starts from the same loaded state, so
// scripts cannot see each other's classes or settings; it sets its environment, points
// Sidekiq at its REDIS_URL and evaluates the script as `ruby -e` would. FERRY_RUBY_FORK=0
// runs every script in a Ruby process of its own instead. The sidekiq binary is always
// started for real.

// forkServerRuby is the fork server: it loads the release, then reads one JSON request per
// line on stdin ({"id", "script", "env", "out", "err"}), forks a child per request, and
// answers {"id", "pid"} when the child started and {"id", "status"} when it ended. It is
// single-threaded (a fork from a threaded process keeps only the calling thread), and exits
// when stdin closes, that is when the test binary ends; children still running finish on
// their own. Loading is what the prelude does minus the parts that depend on the script's
// environment (FERRY_CONFIG, evaluated in the child).
const forkServerRuby = `
$stdout.sync = true
FERRY_PROTO = $stdout
$ferry_children = {}
def ferry_reply(h) = FERRY_PROTO.write(JSON.generate(h) + "\n")
def ferry_run(req)
  $stdin.reopen(File::NULL)
  $stdout.reopen(req["out"], "w")
  $stdout.sync = true
  $stderr.reopen(req["err"], "w")
  $stderr.sync = true
  ENV.update(req["env"])
  status = 0
  begin
    TOPLEVEL_BINDING.eval(FERRY_CONFIG + "\n" + req["script"], "-e", 1)
  rescue SystemExit => e
    status = e.status
  rescue Exception => e
    $stderr.write(e.full_message(highlight: false))
    status = 1
  end
  $stdout.flush
  $stderr.flush
  exit!(status)
end
buf = +""
loop do
  ready = IO.select([$stdin], nil, nil, $ferry_children.empty? ? nil : 0.005)
  if ready
    begin
      buf << $stdin.read_nonblock(1 << 20)
    rescue IO::WaitReadable
    rescue EOFError
      break
    end
    while (i = buf.index("\n"))
      req = JSON.parse(buf.slice!(0, i + 1))
      pid = fork { ferry_run(req) }
      $ferry_children[pid] = req["id"]
      ferry_reply("id" => req["id"], "pid" => pid)
    end
  end
  begin
    while (w = Process.wait2(-1, Process::WNOHANG))
      pid, st = w
      id = $ferry_children.delete(pid)
      ferry_reply("id" => id, "status" => st.exitstatus || 128 + st.termsig.to_i) if id
    end
  rescue Errno::ECHILD
  end
end
`

// forkServer is a running fork server and the calls waiting on it.
type forkServer struct {
	cmd    *exec.Cmd
	stderr *SyncBuffer

	wmu   sync.Mutex // serialises requests on stdin
	stdin io.WriteCloser

	mu    sync.Mutex
	calls map[int64]*forkCall
	next  int64
	err   error // why the server is gone; new calls then run without it

	exited chan struct{} // closed when read has seen the process exit
}

type forkCall struct {
	pid    chan int
	status chan int
}

var forkServers struct {
	mu      sync.Mutex
	servers map[string]*forkServer // by release name and ActiveJob setting
}

// StopRubyServers ends the Ruby fork servers the tests of this process started (they live
// until the process exits otherwise), for a TestMain that checks for leaked goroutines
// after the tests. Later scripts start new ones.
func StopRubyServers() {
	forkServers.mu.Lock()
	servers := forkServers.servers
	forkServers.servers = nil
	forkServers.mu.Unlock()
	for _, fs := range servers {
		if fs.cmd == nil {
			continue
		}
		fs.wmu.Lock()
		_ = fs.stdin.Close()
		fs.wmu.Unlock()
		select {
		case <-fs.exited:
		case <-time.After(10 * time.Second):
			_ = fs.cmd.Process.Kill()
			<-fs.exited
		}
	}
}

// forkDisabled reports whether FERRY_RUBY_FORK=0 asks for a Ruby process per script.
func forkDisabled() bool { return os.Getenv("FERRY_RUBY_FORK") == "0" }

// forkServerFor returns the release's fork server, starting it on first use; nil when it
// cannot run (the caller then starts Ruby for the script).
func (s *RubySidekiq) forkServerFor(activeJob bool) *forkServer {
	if forkDisabled() {
		return nil
	}
	key := fmt.Sprintf("%s/%v", s.name, activeJob)
	forkServers.mu.Lock()
	defer forkServers.mu.Unlock()
	if forkServers.servers == nil {
		forkServers.servers = map[string]*forkServer{}
	}
	if fs, ok := forkServers.servers[key]; ok {
		if fs.gone() != nil {
			return nil
		}
		return fs
	}
	fs, err := s.startForkServer(activeJob)
	if err != nil {
		fs = &forkServer{err: err}
	}
	forkServers.servers[key] = fs
	if err != nil {
		return nil
	}
	return fs
}

func (s *RubySidekiq) startForkServer(activeJob bool) (*forkServer, error) {
	load, config := s.preludeParts(activeJob)
	// The Web UI and Rack's mock requests too, which many scripts load.
	script := load + "require \"sidekiq/web\"\nrequire \"rack/mock\"\nFERRY_CONFIG = " + rubyQuote(config) + "\n" + forkServerRuby
	name, args := s.command("-e", script)
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fs := &forkServer{cmd: cmd, stderr: &SyncBuffer{}, stdin: stdin, calls: map[int64]*forkCall{}, exited: make(chan struct{})}
	cmd.Stderr = fs.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go fs.read(stdout)
	return fs, nil
}

// read delivers the server's answers until its stdout closes, then fails what still waits.
func (fs *forkServer) read(stdout io.Reader) {
	defer close(fs.exited)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m struct {
			ID     int64 `json:"id"`
			PID    *int  `json:"pid"`
			Status *int  `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		fs.mu.Lock()
		c := fs.calls[m.ID]
		if m.Status != nil {
			delete(fs.calls, m.ID)
		}
		fs.mu.Unlock()
		if c == nil {
			continue
		}
		if m.PID != nil {
			c.pid <- *m.PID
		}
		if m.Status != nil {
			c.status <- *m.Status
		}
	}
	_ = fs.cmd.Wait()
	fs.mu.Lock()
	fs.err = fmt.Errorf("ruby fork server exited: %s", tail(fs.stderr.String(), 2000))
	calls := fs.calls
	fs.calls = map[int64]*forkCall{}
	fs.mu.Unlock()
	for _, c := range calls {
		close(c.status)
	}
}

func (fs *forkServer) gone() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.err
}

// errForkNotSent is returned by run when the server was gone before the script was sent:
// the script can be run another way. errForkServerGone is returned when it died while the
// script ran: whatever the script did may have happened, so it must not be run again.
var (
	errForkNotSent    = errors.New("ruby fork server gone before the script was sent")
	errForkServerGone = errors.New("ruby fork server died while the script ran")
)

// run evaluates script in a forked child with env added, and returns its stdout and stderr
// and exit status; a child still running after timeout is killed.
func (fs *forkServer) run(script string, env []string, timeout time.Duration) (stdout, stderr string, status int, err error) {
	dir, err := os.MkdirTemp("", "ferry-ruby-*")
	if err != nil {
		return "", "", 0, err
	}
	defer os.RemoveAll(dir)
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	outPath, errPath := filepath.Join(dir, "out"), filepath.Join(dir, "err")
	c := &forkCall{pid: make(chan int, 1), status: make(chan int, 1)}
	fs.mu.Lock()
	if fs.err != nil {
		fs.mu.Unlock()
		return "", "", 0, errForkNotSent
	}
	fs.next++
	id := fs.next
	fs.calls[id] = c
	fs.mu.Unlock()
	req, err := json.Marshal(map[string]any{"id": id, "script": script, "env": envMap, "out": outPath, "err": errPath})
	if err != nil {
		return "", "", 0, err
	}
	fs.wmu.Lock()
	_, err = fs.stdin.Write(append(req, '\n'))
	fs.wmu.Unlock()
	if err != nil {
		fs.mu.Lock()
		delete(fs.calls, id)
		fs.mu.Unlock()
		return "", "", 0, errForkNotSent
	}
	read := func() (string, string) {
		o, _ := os.ReadFile(outPath)
		e, _ := os.ReadFile(errPath)
		return string(o), string(e)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	pid := 0
	for {
		select {
		case pid = <-c.pid:
		case st, ok := <-c.status:
			o, e := read()
			if !ok {
				return o, e, 0, errForkServerGone
			}
			return o, e, st, nil
		case <-timer.C:
			if pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			o, e := read()
			return o, e, -1, fmt.Errorf("script still running after %v: killed", timeout)
		}
	}
}

// rubyQuote is s as a single-quoted Ruby string literal.
func rubyQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
