package main

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Every worker ferrybench measures (Ruby's sidekiq, go-workers2's harness, Ferry) runs as a
// child process and speaks one line protocol, so each is timed and charged the same way:
//
//	start <unix ns> [<user µs> <sys µs>]    once, as the first job starts (Go workers add
//	                                        their getrusage; Ruby's CPU is read from /proc)
//	count <jobs done> <unix ns>             every 10 ms while the count changes; the time
//	                                        is when the latest job finished
//	report <jobs done> <unix ns> [<user µs> <sys µs> <max RSS kB>]
//	                                        the answer to a "report" line on stdin
//
// on stdout (other lines are kept for error messages). The child stops when its stdin
// closes (so it also stops when ferrybench dies) or on SIGTERM. A drain is timed from the first start to the last job's end, from
// the children's own clocks.

// childMsg is one parsed protocol line.
type childMsg struct {
	Kind   string // "start", "count" or "report"
	Count  int64
	At     time.Time
	CPU    cpuTime
	HasCPU bool
	MaxRSS int64 // kB, report only
}

// parseChildLine parses one line of the protocol; ok is false for any other line.
func parseChildLine(line string) (m childMsg, ok bool, err error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return m, false, nil
	}
	nums := make([]int64, 0, len(f)-1)
	parse := func() error {
		for _, s := range f[1:] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("child line %q: %w", cut(line, 80), err)
			}
			nums = append(nums, n)
		}
		return nil
	}
	switch f[0] {
	case "start":
		if err := parse(); err != nil {
			return m, false, err
		}
		if len(nums) != 1 && len(nums) != 3 {
			return m, false, fmt.Errorf("child line %q: start takes 1 or 3 numbers", cut(line, 80))
		}
		m = childMsg{Kind: "start", At: time.Unix(0, nums[0])}
		if len(nums) == 3 {
			m.CPU, m.HasCPU = usCPU(nums[1], nums[2]), true
		}
	case "count":
		if err := parse(); err != nil {
			return m, false, err
		}
		if len(nums) != 2 {
			return m, false, fmt.Errorf("child line %q: count takes 2 numbers", cut(line, 80))
		}
		m = childMsg{Kind: "count", Count: nums[0], At: time.Unix(0, nums[1])}
	case "report":
		if err := parse(); err != nil {
			return m, false, err
		}
		if len(nums) != 2 && len(nums) != 5 {
			return m, false, fmt.Errorf("child line %q: report takes 2 or 5 numbers", cut(line, 80))
		}
		m = childMsg{Kind: "report", Count: nums[0], At: time.Unix(0, nums[1])}
		if len(nums) == 5 {
			m.CPU, m.HasCPU, m.MaxRSS = usCPU(nums[2], nums[3]), true, nums[4]
		}
	default:
		return m, false, nil
	}
	return m, true, nil
}

func usCPU(user, sys int64) cpuTime {
	return cpuTime{User: time.Duration(user) * time.Microsecond, Sys: time.Duration(sys) * time.Microsecond}
}

// child is a running worker process.
type child struct {
	name     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	output   *tailBuffer // lines outside the protocol, and stderr
	stopOnce sync.Once
	quit     chan struct{} // closed by stop: protocol lines are no longer read
	exited   chan struct{}
	err      error // from Wait, once exited is closed
}

// childEvent is a protocol line from child i.
type childEvent struct {
	i   int
	msg childMsg
}

// startChild starts cmd in its own process group, sending its protocol lines, tagged i,
// to events.
func startChild(i int, name string, cmd *exec.Cmd, events chan<- childEvent) (*child, error) {
	c := &child{name: name, cmd: cmd, output: &tailBuffer{}, quit: make(chan struct{}), exited: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = c.output
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var reading sync.WaitGroup
	reading.Add(1)
	go func() {
		defer reading.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m, ok, err := parseChildLine(sc.Text())
			if err != nil || !ok {
				fmt.Fprintln(c.output, sc.Text())
				continue
			}
			select {
			case events <- childEvent{i, m}:
			case <-c.quit:
			}
		}
	}()
	go func() {
		reading.Wait()
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// ask writes a line to the child's stdin.
func (c *child) ask(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

// stop closes stdin and sends SIGTERM to the child's process group, then SIGKILL after
// grace.
func (c *child) stop(grace time.Duration) {
	c.stopOnce.Do(func() { close(c.quit) })
	_ = c.stdin.Close()
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.exited
	}
}

// describe is the child's name, exit status and the tail of its other output, for errors.
func (c *child) describe() string {
	s := c.name
	select {
	case <-c.exited:
		s += fmt.Sprintf(" (exited: %v)", c.err)
	default:
	}
	if out := strings.TrimSpace(c.output.String()); out != "" {
		if len(out) > 2000 {
			out = "…" + out[len(out)-2000:]
		}
		s += ":\n" + out
	}
	return s
}

// progress is a Go worker's side of the protocol: it counts finished jobs and writes the
// lines.
type progress struct {
	mu      sync.Mutex // serialises writes
	w       io.Writer
	once    sync.Once
	done    atomic.Int64
	lastEnd atomic.Int64 // unix ns of the latest finished job
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// started is called as each job starts; the first call writes the start line.
func (p *progress) started() {
	p.once.Do(func() {
		cpu, _ := selfCPU()
		p.line("start %d %d %d", time.Now().UnixNano(), cpu.User.Microseconds(), cpu.Sys.Microseconds())
	})
}

// finished is called as each job ends.
func (p *progress) finished() {
	p.lastEnd.Store(time.Now().UnixNano())
	p.done.Add(1)
}

func (p *progress) line(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", a...)
}

func (p *progress) report() {
	cpu, rss := selfCPU()
	p.line("report %d %d %d %d %d", p.done.Load(), p.lastEnd.Load(), cpu.User.Microseconds(), cpu.Sys.Microseconds(), rss)
}

// tick writes a count line every d while the count changes, until the returned function
// is called.
func (p *progress) tick(d time.Duration) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if n := p.done.Load(); n != last {
					last = n
					p.line("count %d %d", n, p.lastEnd.Load())
				}
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

// serveStdin answers "report" lines until stdin closes, then calls stop.
func (p *progress) serveStdin(r io.Reader, stop func()) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "report" {
			p.report()
		}
	}
	stop()
}

// tailBuffer keeps the last 16 KB written to it; safe for concurrent use.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 16 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
