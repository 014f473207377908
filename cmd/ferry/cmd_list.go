package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/api"
)

// setKind describes one of the set listings.
type setKind struct {
	use, short, long string
	set              api.SetName
	columns          []column
}

var (
	colJID   = column{"JID", 24, func(e *api.Entry, _ time.Time) string { return orDash(e.JID()) }}
	colClass = column{"CLASS", 40, func(e *api.Entry, _ time.Time) string { return classText(e) }}
	colQueue = column{"QUEUE", 20, func(e *api.Entry, _ time.Time) string { return e.Queue() }}
	colArgs  = column{"ARGS", 50, func(e *api.Entry, _ time.Time) string { return argsText(e) }}
	colError = column{"ERROR", 60, func(e *api.Entry, _ time.Time) string { return errorText(e) }}
	colRetry = column{"RETRIES", 0, func(e *api.Entry, _ time.Time) string { return retryCountText(e) }}
	colAt    = func(title string) column {
		return column{title, 0, func(e *api.Entry, now time.Time) string { return relative(e.At(), now) }}
	}
)

var (
	setRetries = setKind{
		use: "retries", set: api.RetrySet,
		short: "Failed jobs waiting for their next attempt (the retry set)",
		long: `Lists the retry set, next attempt first: when it is due, the job, how many retries it
has had and its latest error. Filters narrow the list; age is the time since the latest
failure.`,
		columns: []column{colAt("NEXT"), colJID, colClass, colQueue, colRetry, colError},
	}
	setDead = setKind{
		use: "dead", set: api.DeadSet,
		short: "Jobs that used up their retries (the dead set)",
		long: `Lists the dead set, most recent death first. Filters narrow the list; age is the
time since the job died.`,
		columns: []column{colAt("DIED"), colJID, colClass, colQueue, colRetry, colError},
	}
	setScheduled = setKind{
		use: "scheduled", set: api.ScheduledSet,
		short: "Jobs scheduled to run later (the schedule set)",
		long: `Lists the schedule set, soonest first. Filters narrow the list; age is the time since
the job was scheduled (its created_at).`,
		columns: []column{colAt("RUNS"), colJID, colClass, colQueue, colArgs},
	}
)

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listFlags are the flags of every listing.
type listFlags struct {
	filterFlags
	jids  []string
	limit int
}

func (lf *listFlags) register(cmd *cobra.Command, what string) {
	lf.filterFlags.register(cmd.Flags(), what)
	cmd.Flags().StringSliceVar(&lf.jids, "jid", nil, "only the "+what+" with this jid (repeat, or separate with commas)")
	cmd.Flags().IntVar(&lf.limit, "limit", -1, "show at most this many (default 100 in a table, all with --json; 0: all)")
}

func (lf *listFlags) effectiveLimit(jsonOut bool) int {
	switch {
	case lf.limit >= 0:
		return lf.limit
	case jsonOut:
		return 0
	}
	return 100
}

func (lf *listFlags) filtered() bool { return lf.set() || len(lf.jids) > 0 }

func newSetListCmd(k setKind) func(*app) *cobra.Command {
	return func(a *app) *cobra.Command {
		var lf listFlags
		cmd := &cobra.Command{
			Use:   k.use,
			Short: k.short,
			Long:  k.long,
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				f, err := lf.filter(lf.jids)
				if err != nil {
					return err
				}
				if err := a.connect(); err != nil {
					return err
				}
				ctx := cmd.Context()
				total, err := a.sk.Size(ctx, k.set)
				if err != nil {
					return a.redisErr(err)
				}
				l := newLister(a, lf.effectiveLimit(a.jsonOut), k.columns)
				found := map[string]bool{}
				err = a.sk.Each(ctx, k.set, f, func(e *api.Entry) error {
					found[e.JID()] = true
					return l.add(e)
				})
				if err != nil {
					return a.redisErr(err)
				}
				if err := l.close(k.use, total, lf.filtered()); err != nil {
					return err
				}
				return missingJIDs(lf.jids, found, "the "+setWord(k.set)+" set")
			},
		}
		lf.register(cmd, "entries")
		return cmd
	}
}

// missingJIDs is a not-found error naming the jids asked for that were not seen.
func missingJIDs(jids []string, found map[string]bool, where string) error {
	var missing []string
	for _, j := range jids {
		if !found[j] {
			missing = append(missing, j)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return notFoundErr("not in %s: %s", where, joinCut(missing))
}

func newJobsCmd(a *app) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "jobs QUEUE",
		Short: "The jobs waiting in a queue, next to run first",
		Long: `Lists the jobs waiting in QUEUE in the order they will run (oldest first), with how long
each has waited. Filters narrow the list; age is the time since the job was enqueued.
Queues move fast: jobs taken by workers while ferry reads may be left out.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("jobs takes one queue name (see 'ferry queues')")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			f, err := lf.filter(lf.jids)
			if err != nil {
				return err
			}
			if err := a.connect(); err != nil {
				return err
			}
			ctx := cmd.Context()
			exists, err := a.sk.QueueExists(ctx, name)
			if err != nil {
				return a.redisErr(err)
			}
			if !exists {
				return notFoundErr("no queue %q (see 'ferry queues')", name)
			}
			q, err := a.sk.Queue(ctx, name)
			if err != nil {
				return a.redisErr(err)
			}
			cols := []column{
				{"WAITING", 0, func(e *api.Entry, now time.Time) string {
					if since := e.Since(); !since.IsZero() {
						return human(now.Sub(since))
					}
					return "-"
				}},
				colJID, colClass, colArgs,
			}
			l := newLister(a, lf.effectiveLimit(a.jsonOut), cols)
			found := map[string]bool{}
			err = a.sk.EachInQueue(ctx, name, f, func(e *api.Entry) error {
				found[e.JID()] = true
				return l.add(e)
			})
			if err != nil {
				return a.redisErr(err)
			}
			if err := l.close("jobs", q.Size, lf.filtered()); err != nil {
				return err
			}
			return missingJIDs(lf.jids, found, "queue "+name)
		},
	}
	lf.register(cmd, "jobs")
	return cmd
}
