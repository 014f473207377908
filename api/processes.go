package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// Process is one Sidekiq or Ferry process as its heartbeat describes it: Ruby's
// Sidekiq::Process.
type Process struct {
	// Identity is the process's identity (hostname:pid:nonce for Ruby), the member of the
	// processes set and the name of its hash.
	Identity string
	// Hostname, PID and Tag are from the heartbeat's info.
	Hostname string
	PID      int64
	Tag      string
	// Labels are the process's labels; Ferry processes carry "ferry".
	Labels []string
	// Queues are the queues the process works, in its order (Sidekiq 8.0.9+'s capsules
	// when present, else info.queues).
	Queues []string
	// Concurrency is how many jobs the process runs at once: the hash field (Sidekiq
	// 8.1.2+, Ferry) or info.concurrency (earlier versions).
	Concurrency int64
	// Busy is how many jobs it was running at its last heartbeat.
	Busy int64
	// Beat is its last heartbeat.
	Beat time.Time
	// StartedAt is when it started.
	StartedAt time.Time
	// Quiet reports whether it is quiet or stopping (it fetches no new jobs).
	Quiet bool
	// RSSKB is its resident memory in KB; RTT its last Redis round trip.
	RSSKB int64
	RTT   time.Duration
	// Version is the Sidekiq version it reports (7.0.2+), or "ferry-<version>".
	Version string
	// Embedded reports an embedded Sidekiq (7.0.3+), which refuses remote quiet and stop.
	Embedded bool
	// Info is the heartbeat's info JSON as the process wrote it.
	Info json.RawMessage
}

// Runtime is "go" for a Ferry process and "ruby" for any other.
func (p *Process) Runtime() string {
	if strings.HasPrefix(p.Version, "ferry") {
		return "go"
	}
	for _, l := range p.Labels {
		if l == "ferry" {
			return "go"
		}
	}
	return "ruby"
}

// processFields are the hash fields Ruby's ProcessSet reads, Sidekiq 8.1.2+'s
// "concurrency" included.
var processFields = []string{"info", "concurrency", "busy", "beat", "quiet", "rss", "rtt_us"}

// Processes lists the live processes, sorted by identity, in two round trips, as Ruby's
// ProcessSet#each: members of the processes set whose hash has expired (a process that
// died in the last minute) are left out. It changes nothing; see CleanupProcesses.
func (a *API) Processes(ctx context.Context) ([]Process, error) {
	ids, err := a.rdb.SMembers(ctx, a.keys.Processes()).Result()
	if err != nil {
		return nil, fmt.Errorf("api: reading the processes set: %w", err)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, a.keys.Process(id), processFields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("api: reading processes: %w", err)
	}
	out := make([]Process, 0, len(ids))
	for i, id := range ids {
		if p, ok := decodeProcess(id, cmds[i].Val()); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// ErrProcessNotFound is returned (wrapped in a *ProcessNotFoundError) when a process is
// not in the processes set or its heartbeat has expired.
var ErrProcessNotFound = errors.New("api: process not found")

// ProcessNotFoundError names the identity that was not found. It matches
// ErrProcessNotFound.
type ProcessNotFoundError struct{ Identity string }

func (e *ProcessNotFoundError) Error() string {
	return fmt.Sprintf("api: process %q not found (not in the processes set, or its heartbeat expired)", e.Identity)
}

// Is matches ErrProcessNotFound.
func (e *ProcessNotFoundError) Is(target error) bool { return target == ErrProcessNotFound }

// ErrEmbedded is returned when asked to quiet or stop an embedded Sidekiq process, which
// Sidekiq 7.0.3+ refuses the same way.
var ErrEmbedded = errors.New("api: an embedded process cannot be quieted or stopped remotely")

// Process looks one process up by identity in one round trip (MULTI of SISMEMBER and
// HMGET, as Ruby's ProcessSet[identity]). A missing or expired process is a
// *ProcessNotFoundError.
func (a *API) Process(ctx context.Context, identity string) (*Process, error) {
	var member *redis.BoolCmd
	var fields *redis.SliceCmd
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		member = p.SIsMember(ctx, a.keys.Processes(), identity)
		fields = p.HMGet(ctx, a.keys.Process(identity), processFields...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("api: looking up process: %w", err)
	}
	if !member.Val() {
		return nil, &ProcessNotFoundError{Identity: identity}
	}
	p, ok := decodeProcess(identity, fields.Val())
	if !ok {
		return nil, &ProcessNotFoundError{Identity: identity}
	}
	return &p, nil
}

// decodeProcess builds a Process from the HMGET of processFields; ok is false when the
// hash has no info (the process expired).
func decodeProcess(id string, vals []any) (Process, bool) {
	str := func(i int) string {
		if i < len(vals) {
			if s, ok := vals[i].(string); ok {
				return s
			}
		}
		return ""
	}
	info := str(0)
	if info == "" {
		return Process{}, false
	}
	p := Process{Identity: id, Info: json.RawMessage(info)}
	if !jsonwire.Valid(p.Info) {
		p.Info = nil
	}
	var concurrency int64
	var queues []string
	var capsules []byte
	_ = jsonwire.ScanObject([]byte(info), func(k, v []byte) error {
		switch string(k) {
		case `"hostname"`:
			p.Hostname = rawString(v)
		case `"pid"`:
			p.PID = rawInt(v)
		case `"tag"`:
			p.Tag = rawString(v)
		case `"labels"`:
			p.Labels = rawStrings(v)
		case `"queues"`:
			queues = rawStrings(v)
		case `"capsules"`:
			capsules = v
		case `"concurrency"`:
			concurrency = rawInt(v)
		case `"started_at"`:
			p.StartedAt, _ = parseTimestamp(v)
		case `"version"`:
			p.Version = rawString(v)
		case `"embedded"`:
			p.Embedded = string(v) == "true"
		}
		return nil
	})
	p.Queues = queues
	if capsules != nil {
		if q := capsuleQueues(capsules); q != nil {
			p.Queues = q
		}
	}
	if s := str(1); s != "" {
		concurrency, _ = strconv.ParseInt(s, 10, 64)
	}
	p.Concurrency = concurrency
	p.Busy, _ = strconv.ParseInt(str(2), 10, 64)
	if f, err := strconv.ParseFloat(str(3), 64); err == nil {
		p.Beat = secondsToTime(f)
	}
	p.Quiet = str(4) == "true"
	p.RSSKB, _ = strconv.ParseInt(str(5), 10, 64)
	if us, err := strconv.ParseInt(str(6), 10, 64); err == nil {
		p.RTT = time.Duration(us) * time.Microsecond
	}
	return p, true
}

// capsuleQueues lists the queues of Sidekiq 8.0.9+'s capsules ({"default": {"weights":
// {"q": 1, ...}}, ...}) in order, without repeats, as Process#queues does.
func capsuleQueues(raw []byte) []string {
	var out []string
	seen := map[string]bool{}
	_ = jsonwire.ScanObject(raw, func(_, capsule []byte) error {
		return jsonwire.ScanObject(capsule, func(k, v []byte) error {
			if string(k) != `"weights"` {
				return nil
			}
			return jsonwire.ScanObject(v, func(q, _ []byte) error {
				name, err := jsonwire.Unquote(q)
				if err == nil && !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
				return nil
			})
		})
	})
	return out
}

func rawString(v []byte) string {
	if jsonwire.KindOf(v) != jsonwire.String {
		return ""
	}
	s, _ := jsonwire.Unquote(v)
	return s
}

func rawInt(v []byte) int64 {
	if jsonwire.KindOf(v) != jsonwire.Number {
		return 0
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(v), 64)
		if ferr != nil {
			return 0
		}
		return int64(f)
	}
	return n
}

func rawStrings(v []byte) []string {
	if jsonwire.KindOf(v) != jsonwire.Array {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if jsonwire.KindOf(it) == jsonwire.String {
			out = append(out, rawString(it))
		}
	}
	return out
}

// The remote signals a process reads from <identity>-signals on each heartbeat.
const (
	// SignalQuiet (TSTP) stops fetching; running jobs finish.
	SignalQuiet = "TSTP"
	// SignalStop (TERM) quiets, waits for running jobs up to the process's timeout, pushes
	// the rest back to their queues and exits.
	SignalStop = "TERM"
	// SignalDump (TTIN) makes the process log every thread's (goroutine's) backtrace.
	SignalDump = "TTIN"
)

// Quiet asks the process to stop fetching jobs (TSTP), as the Web UI's Quiet button does.
// It returns a *ProcessNotFoundError for an unknown process and ErrEmbedded for an
// embedded one. The process acts at its next heartbeat (within 5 s for Sidekiq 6, 10 s
// for 7 and 8, Ferry's HeartbeatInterval).
func (a *API) Quiet(ctx context.Context, identity string) error {
	return a.signalChecked(ctx, identity, SignalQuiet)
}

// Stop asks the process to shut down (TERM), as the Web UI's Stop button does. See Quiet.
func (a *API) Stop(ctx context.Context, identity string) error {
	return a.signalChecked(ctx, identity, SignalStop)
}

// DumpThreads asks the process to log its threads' backtraces (TTIN). See Quiet.
func (a *API) DumpThreads(ctx context.Context, identity string) error {
	p, err := a.Process(ctx, identity)
	if err != nil {
		return err
	}
	return a.Signal(ctx, p.Identity, SignalDump)
}

func (a *API) signalChecked(ctx context.Context, identity, sig string) error {
	p, err := a.Process(ctx, identity)
	if err != nil {
		return err
	}
	if p.Embedded {
		return fmt.Errorf("%w: %s", ErrEmbedded, identity)
	}
	return a.Signal(ctx, identity, sig)
}

// Signal pushes sig onto <identity>-signals and gives the list 60 s to live, in one
// MULTI/EXEC, exactly as Ruby's Process#signal; it does not check that the process
// exists.
func (a *API) Signal(ctx context.Context, identity, sig string) error {
	key := a.keys.Signals(identity)
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, sig)
		p.Expire(ctx, key, 60*time.Second)
		return nil
	})
	if err != nil {
		return fmt.Errorf("api: signalling %s: %w", sig, err)
	}
	return nil
}

// CleanupProcesses removes from the processes set the members whose heartbeat hash has
// expired and returns how many it removed, as Ruby's ProcessSet#cleanup (Sidekiq 6.5.2+:
// at most once a minute across every caller, guarded by the process_cleanup key; a call
// within that minute removes nothing and returns 0). The Web UI does this whenever it
// lists processes; reading here never does.
func (a *API) CleanupProcesses(ctx context.Context) (int, error) {
	ok, err := a.rdb.SetNX(ctx, a.keys.ProcessCleanup(), "1", 60*time.Second).Result()
	if err != nil {
		return 0, fmt.Errorf("api: process cleanup lock: %w", err)
	}
	if !ok {
		return 0, nil
	}
	ids, err := a.rdb.SMembers(ctx, a.keys.Processes()).Result()
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, a.keys.Process(id), "info")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("api: process cleanup: %w", err)
	}
	var prune []any
	for i, c := range cmds {
		if errors.Is(c.Err(), redis.Nil) {
			prune = append(prune, ids[i])
		}
	}
	if len(prune) == 0 {
		return 0, nil
	}
	n, err := a.rdb.SRem(ctx, a.keys.Processes(), prune...).Result()
	if err != nil {
		return 0, fmt.Errorf("api: process cleanup: %w", err)
	}
	return int(n), nil
}
