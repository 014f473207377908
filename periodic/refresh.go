package periodic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/logcap"
)

// loadBatch is how many job hashes one pipelined round trip reads.
const loadBatch = 200

// maxReported bounds how many bad definitions are remembered as logged.
const maxReported = 1024

// refresh writes this scheduler's own jobs into Redis and reads every job back.
func (s *Scheduler) refresh(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	own := make([]*ownJob, 0, len(s.own))
	for _, o := range s.own {
		own = append(own, o)
	}
	s.mu.Unlock()
	sort.Slice(own, func(i, j int) bool { return own[i].job.Name < own[j].job.Name })
	for _, o := range own {
		if err := s.register(ctx, o, now); err != nil {
			return err
		}
	}
	entries, bad, err := loadEntries(ctx, s.rdb, s.keys, s.cfg.Location, s.cfg.MaxJobs)
	if err != nil {
		return err
	}
	l := &s.loop
	for _, b := range bad {
		s.reportBad(b)
	}
	for name := range l.reported {
		if _, ok := entries[name]; ok {
			delete(l.reported, name) // fixed: log again if it breaks again
		}
	}
	for name := range l.seen {
		if _, ok := entries[name]; !ok {
			delete(l.seen, name)
		}
	}
	l.entries, l.order = entries, sortedNames(entries)
	return nil
}

// register writes one own job (registerScript).
func (s *Scheduler) register(ctx context.Context, o *ownJob, now time.Time) error {
	seed, score := "", "0"
	if p := prevTick(o.spec.sched, now, catchUpLimit); !p.IsZero() {
		seed, score = tickMember(p), strconv.FormatFloat(epoch(now), 'f', -1, 64)
	}
	name := o.job.Name
	args := make([]any, 0, 4+len(o.fields))
	args = append(args, jobMemberPrefix+name, o.status(), seed, score)
	for _, f := range o.fields {
		args = append(args, f)
	}
	keys := []string{s.keys.jobs(), s.keys.job(name), s.keys.enqueued(name)}
	if err := registerScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("periodic: writing job %q to Redis: %w", cut(name), err)
	}
	return nil
}

// reportBad logs a job that cannot be run, once per name and problem.
func (s *Scheduler) reportBad(err *entryError) {
	l := &s.loop
	if prev, ok := l.reported[err.name]; ok && prev == err.reason {
		return
	}
	if len(l.reported) >= maxReported {
		return
	}
	l.reported[err.name] = err.reason
	s.log.Warn("periodic: skipping a cron job that cannot be run",
		logcap.String("job", err.name), logcap.String("problem", err.reason))
}

// loadEntries reads every job in sidekiq-cron's set (at most max), returning the jobs that
// can run by name and the problems of those that cannot. Only Redis errors fail it.
func loadEntries(ctx context.Context, rdb redis.UniversalClient, keys keyspace, loc *time.Location, max int) (map[string]*entry, []*entryError, error) {
	members, err := jobMembers(ctx, rdb, keys, max)
	if err != nil {
		return nil, nil, err
	}
	entries := make(map[string]*entry, len(members))
	var bad []*entryError
	fields := make([]any, 0, 1+len(hashFields))
	fields = append(fields, maxFieldBytes)
	for _, f := range hashFields {
		fields = append(fields, f)
	}
	if err := loadScript.Load(ctx, rdb).Err(); err != nil {
		return nil, nil, fmt.Errorf("periodic: loading a script: %w", err)
	}
	for start := 0; start < len(members); start += loadBatch {
		batch := members[start:min(start+loadBatch, len(members))]
		cmds := make([]*redis.Cmd, len(batch))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range batch {
				if !validMember(m) {
					continue
				}
				cmds[i] = loadScript.EvalSha(ctx, p, []string{keys.prefix + m}, fields...)
			}
			return nil
		})
		if err != nil && !isReplyError(err) {
			return nil, nil, fmt.Errorf("periodic: reading cron jobs: %w", err)
		}
		for i, m := range batch {
			if cmds[i] != nil && redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
				return nil, nil, fmt.Errorf("periodic: reading cron jobs: %w", cmds[i].Err())
			}
			e, berr := readEntry(m, cmds[i], loc)
			switch {
			case berr != nil:
				bad = append(bad, berr)
			case e != nil:
				entries[e.name] = e
			}
		}
	}
	return entries, bad, nil
}

// validMember reports whether a cron_jobs member can be a job's key at all.
func validMember(m string) bool {
	return len(m) > len(jobMemberPrefix) && m[:len(jobMemberPrefix)] == jobMemberPrefix &&
		len(m) <= len(jobMemberPrefix)+maxNameLen
}

// readEntry turns one loadScript reply into an entry; nil, nil for a member whose hash
// is gone (sidekiq-cron skips those too).
func readEntry(member string, cmd *redis.Cmd, loc *time.Location) (*entry, *entryError) {
	name := member
	if validMember(member) {
		name = member[len(jobMemberPrefix):]
	}
	if cmd == nil {
		return nil, &entryError{name: name, reason: fmt.Sprintf("cron_jobs member %q is not a cron_job: key of a name up to %d bytes", cut(member), maxNameLen)}
	}
	reply, err := cmd.Slice()
	if err != nil {
		return nil, &entryError{name: name, reason: "reading it: " + err.Error()}
	}
	kind, _ := reply[0].(string)
	switch kind {
	case "none":
		return nil, nil
	case "type":
		return nil, &entryError{name: name, reason: fmt.Sprintf("its key holds a %v, not a hash", reply[1])}
	case "big":
		return nil, &entryError{name: name, reason: fmt.Sprintf("its field %v holds %v bytes, more than %d", reply[1], reply[2], maxFieldBytes)}
	case "ok":
	default:
		return nil, &entryError{name: name, reason: "unexpected reply from Redis"}
	}
	vals := make([]*string, len(hashFields))
	for i := range hashFields {
		if i+1 < len(reply) {
			if s, ok := reply[i+1].(string); ok {
				vals[i] = &s
			}
		}
	}
	e, perr := parseEntry(member, vals, loc)
	if perr != nil {
		var ee *entryError
		if errors.As(perr, &ee) {
			ee.name = name
			return nil, ee
		}
		return nil, &entryError{name: name, reason: perr.Error()}
	}
	return e, nil
}

// jobMembers reads at most max members of the cron_jobs set, sorted.
func jobMembers(ctx context.Context, rdb redis.UniversalClient, keys keyspace, max int) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	var cursor uint64
	for {
		batch, next, err := rdb.SScan(ctx, keys.jobs(), cursor, "", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("periodic: reading %s: %w", keys.jobs(), err)
		}
		for _, m := range batch {
			if !seen[m] && len(out) < max {
				seen[m] = true
				out = append(out, m)
			}
		}
		cursor = next
		if cursor == 0 || len(out) >= max {
			break
		}
	}
	sort.Strings(out)
	return out, nil
}

// isReplyError reports whether err is only a Redis error reply to some command of a
// pipeline (such as WRONGTYPE), which that command's result carries, rather than a
// failure to talk to Redis.
func isReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.ErrClosed)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings are passed
	}
	return string(b)
}
