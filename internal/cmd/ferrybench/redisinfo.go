package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisSnapshot is what one INFO says about the server's work so far: the CPU it has used
// (getrusage of the redis-server process, every thread) and its per-command counters. Two
// snapshots taken around a drain give what the drain cost Redis.
type redisSnapshot struct {
	At       time.Time
	CPU      time.Duration // used_cpu_user + used_cpu_sys
	Commands map[string]cmdStat
	PID      int    // process_id, to tell a private server from a shared one
	Clients  int    // connected_clients
	Version  string // redis_version
}

// cmdStat is one INFO commandstats line: calls and total µs spent executing them.
// Commands run inside a Lua script count under their own name as well as under the script.
type cmdStat struct {
	Calls int64
	Usec  int64
}

// takeRedisSnapshot runs one INFO. Redis counts that INFO in the next snapshot, not in
// this one: callers pass it to redisDelta as their own.
func takeRedisSnapshot(ctx context.Context, rdb *redis.Client) (redisSnapshot, error) {
	txt, err := rdb.Info(ctx, "all").Result()
	if err != nil {
		return redisSnapshot{}, fmt.Errorf("INFO: %w", err)
	}
	s, err := parseInfo(txt)
	s.At = time.Now()
	return s, err
}

// parseInfo reads the fields of an INFO reply that ferrybench uses.
func parseInfo(txt string) (redisSnapshot, error) {
	s := redisSnapshot{Commands: map[string]cmdStat{}}
	var user, sys float64
	var haveUser, haveSys bool
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return s, fmt.Errorf("INFO %s: %w", line, err)
			}
			user, haveUser = f, true
		case k == "used_cpu_sys":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return s, fmt.Errorf("INFO %s: %w", line, err)
			}
			sys, haveSys = f, true
		case k == "process_id":
			s.PID, _ = strconv.Atoi(v)
		case k == "connected_clients":
			s.Clients, _ = strconv.Atoi(v)
		case k == "redis_version":
			s.Version = v
		case strings.HasPrefix(k, "cmdstat_"):
			st, err := parseCmdStat(v)
			if err != nil {
				return s, fmt.Errorf("INFO %s: %w", line, err)
			}
			s.Commands[strings.TrimPrefix(k, "cmdstat_")] = st
		}
	}
	if !haveUser || !haveSys {
		return s, fmt.Errorf("INFO has no used_cpu_user/used_cpu_sys")
	}
	s.CPU = time.Duration((user + sys) * float64(time.Second))
	return s, nil
}

// parseCmdStat reads "calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0"
// (older servers stop after usec_per_call).
func parseCmdStat(v string) (cmdStat, error) {
	var st cmdStat
	var haveCalls, haveUsec bool
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "calls":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return st, err
			}
			st.Calls, haveCalls = n, true
		case "usec":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return st, err
			}
			st.Usec, haveUsec = n, true
		}
	}
	if !haveCalls || !haveUsec {
		return st, fmt.Errorf("no calls= or usec= in %q", v)
	}
	return st, nil
}

// redisCost is what Redis spent between two snapshots.
type redisCost struct {
	Wall     time.Duration
	CPU      time.Duration
	Commands map[string]cmdStat
}

// redisDelta is b − a less own: the commands ferrybench itself sent that b counts and a
// does not (an INFO is counted by the next INFO, not by itself).
func redisDelta(a, b redisSnapshot, own map[string]int64) redisCost {
	d := redisCost{Wall: b.At.Sub(a.At), CPU: b.CPU - a.CPU, Commands: map[string]cmdStat{}}
	for name, sb := range b.Commands {
		sa := a.Commands[name]
		st := cmdStat{Calls: sb.Calls - sa.Calls, Usec: sb.Usec - sa.Usec}
		if n := own[name]; n > 0 && st.Calls > 0 {
			// Take off our calls at this window's average cost per call.
			usec := st.Usec * min(n, st.Calls) / st.Calls
			st.Calls -= min(n, st.Calls)
			st.Usec -= usec
		}
		if st.Calls > 0 {
			d.Commands[name] = st
		}
	}
	return d
}

// add sums two costs (rounds of the same worker).
func (c redisCost) add(o redisCost) redisCost {
	out := redisCost{Wall: c.Wall + o.Wall, CPU: c.CPU + o.CPU, Commands: map[string]cmdStat{}}
	for _, m := range []map[string]cmdStat{c.Commands, o.Commands} {
		for k, v := range m {
			s := out.Commands[k]
			s.Calls += v.Calls
			s.Usec += v.Usec
			out.Commands[k] = s
		}
	}
	return out
}

// isScript tells the commands that run a Lua script or function.
func isScript(name string) bool {
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return true
	}
	return false
}

// calls is the number of commands Redis executed, those inside scripts included, and of
// them the script calls.
func (c redisCost) calls() (all, scripts int64) {
	for name, s := range c.Commands {
		all += s.Calls
		if isScript(name) {
			scripts += s.Calls
		}
	}
	return all, scripts
}

// namedStat is a command with its counters.
type namedStat struct {
	Name string
	cmdStat
}

// top returns the k commands with the most calls (byUsec false) or the most µs.
func (c redisCost) top(k int, byUsec bool) []namedStat {
	all := make([]namedStat, 0, len(c.Commands))
	for n, s := range c.Commands {
		all = append(all, namedStat{n, s})
	}
	slices.SortFunc(all, func(a, b namedStat) int {
		va, vb := a.Calls, b.Calls
		if byUsec {
			va, vb = a.Usec, b.Usec
		}
		if r := cmp.Compare(vb, va); r != 0 {
			return r
		}
		return strings.Compare(a.Name, b.Name)
	})
	return all[:min(k, len(all))]
}
