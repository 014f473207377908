package periodic

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// maxTicksPerPass bounds how many ticks of one job a pass tries.
const maxTicksPerPass = 1000

// catchUpLimit is how far back a CatchUp job looks for its latest tick.
const catchUpLimit = 6 * 366 * 24 * time.Hour

// loopState is what a scheduler remembers between passes.
type loopState struct {
	entries     map[string]*entry // by name, as last read from Redis
	order       []string          // entry names, sorted
	seen        map[string]seenJob
	nextRefresh time.Time
	dirty       bool
	reported    map[string]string // bad definitions already logged: name -> problem
}

// seenJob is where a scheduler stands with one job: the spec it knows the job by, and the
// newest tick it has dealt with (claimed, found taken, or skipped).
type seenJob struct {
	cron string
	last time.Time
}

func newLoopState() loopState {
	return loopState{seen: map[string]seenJob{}, reported: map[string]string{}, dirty: true}
}

// nextWake is when the next pass is due: the earliest next tick of any job, or the next
// refresh.
func (l *loopState) nextWake(now time.Time, refresh time.Duration) time.Time {
	wake := l.nextRefresh
	if l.dirty || wake.IsZero() {
		return now
	}
	if limit := now.Add(refresh); wake.After(limit) {
		wake = limit
	}
	for _, name := range l.order {
		e := l.entries[name]
		if e.sched == nil {
			continue
		}
		if t := e.sched.next(now); !t.IsZero() && t.Before(wake) {
			wake = t
		}
	}
	return wake
}

// pass refreshes the job list when due, then claims and enqueues every due tick of every
// job, then recovers interrupted pushes when due. It returns the first Redis error.
func (s *Scheduler) pass(ctx context.Context, now time.Time) error {
	l := &s.loop
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	refreshed := false
	if l.dirty || !now.Before(l.nextRefresh) {
		if err := s.refresh(ctx, now); err != nil {
			s.log.Warn("periodic: reading schedules from Redis failed", zap.Error(err))
			note(err)
		} else {
			l.dirty, l.nextRefresh, refreshed = false, now.Add(s.cfg.RefreshInterval), true
		}
	}
	s.mu.Lock()
	own := s.own
	s.mu.Unlock()
	for _, name := range l.order {
		e := l.entries[name]
		o := own[name]
		if s.cfg.OwnJobsOnly && o == nil {
			continue
		}
		catchUp := o != nil && o.job.CatchUp
		note(s.runJob(ctx, e, catchUp, now))
	}
	if refreshed {
		note(s.recoverPending(ctx, now))
	}
	return first
}

// runJob claims and enqueues the due ticks of one job.
func (s *Scheduler) runJob(ctx context.Context, e *entry, catchUp bool, now time.Time) error {
	l := &s.loop
	st := l.seen[e.name]
	if st.cron != e.cron {
		st = seenJob{cron: e.cron} // new to this scheduler, or its spec changed
	}
	ticks, skipped := s.dueTicks(e, st, catchUp, now)
	if !skipped.IsZero() {
		st.last = skipped
	}
	defer func() { l.seen[e.name] = st }()
	for _, tick := range ticks {
		outcome, err := s.claim(ctx, e, tick, now)
		if err != nil {
			return err
		}
		st.last = tick
		switch outcome {
		case "claimed":
			s.push(ctx, e, tick, now)
		case "changed", "gone":
			l.dirty = true
			return nil
		}
	}
	return nil
}

// dueTicks returns the ticks of e a pass at now should try, oldest first, and the newest
// tick it decided to skip (zero if none).
//
// The first time a scheduler sees a job (or a new spec of it) it tries only the job's
// latest tick, as a sidekiq-cron poller does, and only if it is at most Grace old (or the
// job has CatchUp). After that it tries every tick since the last one it dealt with that
// is at most Grace old, so a scheduler that was paused a few seconds still covers each
// tick; older ticks are skipped, or with CatchUp the newest of them is tried.
func (s *Scheduler) dueTicks(e *entry, st seenJob, catchUp bool, now time.Time) (ticks []time.Time, skipped time.Time) {
	grace := s.cfg.Grace
	if st.last.IsZero() {
		limit := grace
		if catchUp {
			limit = catchUpLimit
		}
		p := prevTick(e.sched, now, limit)
		if p.IsZero() {
			return nil, now // nothing before now: start counting from now
		}
		if now.Sub(p) > grace && !catchUp {
			return nil, p
		}
		return []time.Time{p}, time.Time{}
	}
	all := ticksBetween(e.sched, st.last, now, maxTicksPerPass)
	cutoff := now.Add(-grace)
	var missed []time.Time
	for len(all) > 0 && all[0].Before(cutoff) {
		missed, all = append(missed, all[0]), all[1:]
	}
	if len(missed) == 0 {
		return all, time.Time{}
	}
	newest := missed[len(missed)-1]
	if catchUp {
		return append([]time.Time{newest}, all...), time.Time{}
	}
	s.log.Info("periodic: skipped ticks older than the grace period",
		logcap.String("job", e.name), zap.Int("ticks", len(missed)), zap.Time("newest", newest))
	return all, newest
}

// claim runs claimScript for one tick.
func (s *Scheduler) claim(ctx context.Context, e *entry, tick, now time.Time) (string, error) {
	keys := []string{s.keys.jobs(), s.keys.job(e.name), s.keys.enqueued(e.name), s.keys.pending()}
	res, err := claimScript.Run(ctx, s.rdb, keys,
		jobMemberPrefix+e.name, tickMember(tick), epoch(tick), e.cron,
		pendingMember(e.name, tick), now.UnixMilli()).Text()
	if err != nil {
		return "", fmt.Errorf("periodic: claiming %s of %q: %w", tickMember(tick), cut(e.name), err)
	}
	return res, nil
}

// push enqueues a claimed tick through the Client, guarded so that it happens once even
// if a recovering scheduler pushes the same tick, then records it (finishScript). A push
// that fails stays pending: recoverPending pushes it later.
func (s *Scheduler) push(ctx context.Context, e *entry, tick, now time.Time) {
	job, err := e.job(now)
	if err != nil {
		s.log.Warn("periodic: cannot build the job of a tick", logcap.String("job", e.name), logcap.Error(err))
		return
	}
	guard := sidekiq.PushGuard{Key: pushedGuard(e.name, tick), TTL: guardTTL}
	jid, err := s.client.PushJob(sidekiq.WithPushGuards(ctx, guard), job)
	var held *sidekiq.PushStoppedError
	switch {
	case errors.As(err, &held) && held.Key == guard.Key:
		// Pushed already, by a scheduler that recovered this tick: it records it.
		s.dropPending(ctx, pendingMember(e.name, tick))
		return
	case errors.Is(err, sidekiq.ErrPushStopped):
		s.log.Info("periodic: push middleware stopped a tick's job", logcap.String("job", e.name), logcap.Error(err))
		jid = ""
	case err != nil:
		s.log.Warn("periodic: enqueueing a tick failed; it will be retried",
			logcap.String("job", e.name), zap.Time("tick", tick), logcap.Error(err))
		return
	}
	s.finish(ctx, e.name, tick, now, jid)
}

// A pending claim older than maxPendingAge is dropped rather than pushed: every scheduler
// was down that long, and the tick is as missed as any other. guardTTL, how long a tick's
// push guard is kept, is well beyond it, so no push of a tick can outlive its guard; and
// short enough that an every-second job keeps a few thousand guards, not a week's worth.
const (
	maxPendingAge = 10 * time.Minute
	guardTTL      = time.Hour
)

// finish records an enqueue of a claimed tick (last_enqueue_time and jid history, as
// sidekiq-cron does) and drops the claim from the pending set.
func (s *Scheduler) finish(ctx context.Context, name string, tick, now time.Time, jid string) {
	var j any
	if jid != "" {
		j = jid // sidekiq-cron records null when the push was stopped
	}
	hist := mustJSON(map[string]any{"jid": j, "enqueued": formatEnqueueTime(now)})
	keys := []string{s.keys.job(name), s.keys.enqueued(name), s.keys.history(name), s.keys.pending()}
	trim := min(epoch(now.Add(-24*time.Hour)), epoch(tick))
	err := finishScript.Run(ctx, s.rdb, keys, formatEnqueueTime(now), hist, s.cfg.HistorySize-1,
		strconv.FormatFloat(trim, 'f', -1, 64), pendingMember(name, tick)).Err()
	if err != nil {
		s.log.Warn("periodic: recording an enqueue failed", logcap.String("job", name), logcap.Error(err))
	}
}

// dropPending removes a claim from the pending set without recording anything.
func (s *Scheduler) dropPending(ctx context.Context, member string) {
	if err := s.rdb.ZRem(ctx, s.keys.pending(), member).Err(); err != nil {
		s.log.Warn("periodic: removing a pending claim failed", logcap.Error(err))
	}
}

// epoch is t in float seconds.
func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// sortedNames returns the keys of m, sorted.
func sortedNames(m map[string]*entry) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
