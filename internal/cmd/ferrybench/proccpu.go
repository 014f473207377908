package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTime is a process's user and system CPU.
type cpuTime struct {
	User, Sys time.Duration
}

func (c cpuTime) total() time.Duration { return c.User + c.Sys }

func (c cpuTime) sub(o cpuTime) cpuTime { return cpuTime{c.User - o.User, c.Sys - o.Sys} }

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on every Linux ABI.
const clockTick = 10 * time.Millisecond

// procCPU reads a live process's own user and system CPU from /proc/<pid>/stat (10 ms
// resolution; children it has waited for are not included). It is how ferrybench reads
// Ruby's CPU: the Go workers report their own getrusage (selfCPU), to the microsecond.
func procCPU(pid int) (cpuTime, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTime{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may hold spaces and parentheses itself, so
// fields are counted from the last ')'.
func parseProcStat(s string) (cpuTime, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return cpuTime{}, fmt.Errorf("/proc stat %q: no command name", cut(s, 60))
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return cpuTime{}, fmt.Errorf("/proc stat %q: %d fields after the name, want at least 13", cut(s, 60), len(f))
	}
	ut, err1 := strconv.ParseInt(f[14-3], 10, 64)
	st, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuTime{}, fmt.Errorf("/proc stat %q: utime %q stime %q", cut(s, 60), f[14-3], f[15-3])
	}
	return cpuTime{User: time.Duration(ut) * clockTick, Sys: time.Duration(st) * clockTick}, nil
}

// selfCPU is this process's own getrusage: user and system CPU and peak RSS in kB.
func selfCPU() (cpuTime, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTime{}, 0
	}
	return cpuTime{
		User: time.Duration(ru.Utime.Nano()),
		Sys:  time.Duration(ru.Stime.Nano()),
	}, ru.Maxrss
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
