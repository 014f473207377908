package api

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// Work is one running job, as a process's heartbeat reported it: Ruby's Sidekiq::Work.
type Work struct {
	// Process is the identity of the process running it.
	Process string
	// Thread is the process's name for the thread (goroutine slot) running it.
	Thread string
	// Queue is the queue the job came from.
	Queue string
	// RunAt is when the job started.
	RunAt time.Time
	// Payload is the job as it was fetched ("payload": a JSON string since Sidekiq 6.0.2,
	// an object before); Job is it decoded, nil when it does not decode (Err says why).
	Payload string
	Job     *sidekiq.Job
	Err     error
}

// Workers lists the jobs running now, oldest first, in two round trips, as Ruby's
// WorkSet#each: for each live process it reads <identity>:work (Sidekiq 6.4.2+, Ferry)
// or, when that is empty, <identity>:workers (Sidekiq 6.4.1 and earlier). Entries of a
// process whose heartbeat has expired are left out, as 6.x does. The data is as fresh as
// the last heartbeat (5 to 10 s).
func (a *API) Workers(ctx context.Context) ([]Work, error) {
	ids, err := a.rdb.SMembers(ctx, a.keys.Processes()).Result()
	if err != nil {
		return nil, fmt.Errorf("api: reading the processes set: %w", err)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return nil, nil
	}
	type cmds struct {
		alive         *redis.IntCmd
		work, workers *redis.MapStringStringCmd
	}
	cs := make([]cmds, len(ids))
	_, err = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cs[i] = cmds{
				alive:   p.Exists(ctx, a.keys.Process(id)),
				work:    p.HGetAll(ctx, a.keys.Work(id)),
				workers: p.HGetAll(ctx, a.keys.Workers(id)),
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("api: reading running jobs: %w", err)
	}
	var out []Work
	for i, id := range ids {
		if cs[i].alive.Val() == 0 {
			continue
		}
		m := cs[i].work.Val()
		if len(m) == 0 {
			m = cs[i].workers.Val()
		}
		for tid, raw := range m {
			if w, ok := decodeWork(id, tid, raw); ok {
				out = append(out, w)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].RunAt.Equal(out[j].RunAt) {
			return out[i].RunAt.Before(out[j].RunAt)
		}
		if out[i].Process != out[j].Process {
			return out[i].Process < out[j].Process
		}
		return out[i].Thread < out[j].Thread
	})
	return out, nil
}

// decodeWork reads one work entry: {"queue": q, "payload": "<job JSON>" or {...},
// "run_at": epoch seconds}.
func decodeWork(process, thread, raw string) (Work, bool) {
	w := Work{Process: process, Thread: thread}
	err := jsonwire.ScanObject([]byte(raw), func(k, v []byte) error {
		switch string(k) {
		case `"queue"`:
			w.Queue = rawString(v)
		case `"run_at"`:
			w.RunAt, _ = parseTimestamp(v)
		case `"payload"`:
			switch jsonwire.KindOf(v) {
			case jsonwire.String:
				w.Payload = rawString(v)
			case jsonwire.Object:
				w.Payload = string(v)
			}
		}
		return nil
	})
	if err != nil {
		return Work{}, false
	}
	if w.Payload != "" {
		w.Job, w.Err = sidekiq.ParseJobString(w.Payload)
	} else {
		w.Err = errors.New("no payload")
	}
	return w, true
}
