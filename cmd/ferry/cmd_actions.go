package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/api"
)

// actKind describes one bulk action command.
type actKind struct {
	use, short, long string
	verb, past       string // "retry", "retried"
	action           api.Action
	queues           bool // --from queue:NAME allowed
	sets             []api.SetName
}

var (
	actRetry = actKind{
		use: "retry", verb: "retry", past: "Retried", action: api.ActionRetry,
		sets:  []api.SetName{api.RetrySet, api.DeadSet, api.ScheduledSet},
		short: "Put retry, dead or scheduled jobs back on their queues now",
		long: `Moves entries of the retry set (or, with --from, the dead or schedule set) back onto
their queues, to run now, as the Web UI's "Retry Now" and "Add to queue" do: retry_count
goes down by one for retry and dead entries (a manual retry uses up no attempt) and
enqueued_at is set to now. Each entry leaves its set in the same atomic step as it lands
in its queue. A payload that is not a valid job is left in place and reported (exit 5).`,
	}
	actDelete = actKind{
		use: "delete", verb: "delete", past: "Deleted", action: api.ActionDelete, queues: true,
		sets:  []api.SetName{api.RetrySet, api.DeadSet, api.ScheduledSet},
		short: "Delete retry, dead, scheduled or queued jobs",
		long: `Deletes entries of the retry set (or, with --from, the dead or schedule set, or a queue
with --from queue:NAME) for good, as the Web UI's "Delete" does.`,
	}
	actKill = actKind{
		use: "kill", verb: "kill", past: "Killed", action: api.ActionKill,
		sets:  []api.SetName{api.RetrySet, api.ScheduledSet},
		short: "Move retry or scheduled jobs to the dead set",
		long: `Moves entries of the retry set (or, with --from scheduled, the schedule set) unchanged into
the dead set, as the Web UI's "Kill" does, then trims the dead set as Sidekiq does (10,000
entries, 180 days).`,
	}
)

type resultJSON struct {
	Action   string     `json:"action"`
	From     string     `json:"from"`
	DryRun   bool       `json:"dry_run"`
	Matched  int        `json:"matched"`
	Done     int        `json:"done"`
	Gone     int        `json:"gone"`
	Skipped  int        `json:"skipped"`
	Skips    []skipJSON `json:"skips"`
	NotFound []string   `json:"not_found"`
}

type skipJSON struct {
	JID    string `json:"jid"`
	Reason string `json:"reason"`
}

func newActionCmd(k actKind) func(*app) *cobra.Command {
	return func(a *app) *cobra.Command {
		var (
			ff               filterFlags
			from             string
			all, yes, dryRun bool
		)
		var fromHelp []string
		for _, s := range k.sets {
			fromHelp = append(fromHelp, setWord(s))
		}
		if k.queues {
			fromHelp = append(fromHelp, "queue:NAME")
		}
		cmd := &cobra.Command{
			Use:   k.use + " [JID...]",
			Short: k.short,
			Long: k.long + `

Select entries by jid, by filters (--class, --queue, --error, --older-than, --newer-than;
all must match), or every entry with --all. A selection by filters or --all asks for
confirmation on a terminal; when standard input is not a terminal ferry never asks and
needs --yes instead (exit 4 without it). --dry-run counts the matching entries and changes
nothing.`,
			RunE: func(cmd *cobra.Command, jids []string) error {
				src, queue, err := parseFrom(k, from)
				if err != nil {
					return err
				}
				if all && (ff.set() || len(jids) > 0) {
					return usageErr("--all selects every entry; leave out jids and filters, or drop --all")
				}
				if !all && !ff.set() && len(jids) == 0 {
					return usageErr("%s what? Name jids, give filters (--class, --error, --older-than, ...), or --all", k.verb)
				}
				f, err := ff.filter(jids)
				if err != nil {
					return err
				}
				if err := a.connect(); err != nil {
					return err
				}
				ctx := cmd.Context()
				where := "the " + setWord(src) + " set"
				if queue != "" {
					where = "queue " + queue
				}
				res := &api.Result{}
				bulk := all || len(jids) == 0
				switch {
				case dryRun:
					res, err = a.countMatches(cmd, src, queue, f)
					if err != nil {
						return a.redisErr(err)
					}
				default:
					if bulk {
						q, err := a.bulkQuestion(cmd, k, src, queue, all, ff)
						if err != nil {
							return err
						}
						if err := a.confirm(yes, q); err != nil {
							return err
						}
					}
					switch {
					case queue != "" && all:
						st, err := a.sk.Queue(ctx, queue)
						if err == nil {
							err = a.sk.ClearQueue(ctx, queue)
						}
						if err != nil {
							return a.redisErr(err)
						}
						res.Matched, res.Done = int(st.Size), int(st.Size)
					case queue != "":
						res, err = a.sk.DeleteFromQueue(ctx, queue, f)
					case all:
						res, err = a.sk.Apply(ctx, k.action, src, nil)
					default:
						res, err = a.sk.Apply(ctx, k.action, src, f)
					}
					if err != nil {
						return a.redisErr(err)
					}
				}
				from := string(src)
				if queue != "" {
					from = "queue:" + queue
				}
				if err := a.printResult(k, from, where, dryRun, res); err != nil {
					return err
				}
				switch {
				case len(res.NotFound) > 0:
					return notFoundErr("not in %s: %s", where, joinCut(res.NotFound))
				case res.Skipped > 0:
					return partialErr("%d %s left in %s", res.Skipped, plural(res.Skipped, "entry", "entries"), where)
				}
				return nil
			},
		}
		fl := cmd.Flags()
		ff.register(fl, "entries")
		fl.StringVar(&from, "from", "retry", "where the entries are: "+strings.Join(fromHelp, ", "))
		fl.BoolVar(&all, "all", false, "every entry")
		fl.BoolVar(&yes, "yes", false, "do not ask for confirmation")
		fl.BoolVar(&dryRun, "dry-run", false, "count the matching entries, change nothing")
		return cmd
	}
}

// setWord is how ferry names a set on its command line.
func setWord(s api.SetName) string {
	if s == api.ScheduledSet {
		return "scheduled"
	}
	return string(s)
}

// parseFrom reads --from: a set name, or queue:NAME where the action allows it.
func parseFrom(k actKind, from string) (api.SetName, string, error) {
	if name, ok := strings.CutPrefix(from, "queue:"); ok {
		if !k.queues {
			return "", "", usageErr("%s works on sets, not queues (--from %s)", k.verb, from)
		}
		if name == "" {
			return "", "", usageErr("--from queue:NAME needs a queue name")
		}
		return "", name, nil
	}
	s, err := api.ParseSetName(from)
	if err != nil {
		return "", "", usageErr("--from %q: want one of retry, dead, scheduled", from)
	}
	for _, ok := range k.sets {
		if s == ok {
			return s, "", nil
		}
	}
	return "", "", usageErr("cannot %s entries of the %s set", k.verb, setWord(s))
}

// bulkQuestion is the confirmation question for a bulk action.
func (a *app) bulkQuestion(cmd *cobra.Command, k actKind, src api.SetName, queue string, all bool, ff filterFlags) (string, error) {
	ctx := cmd.Context()
	verb := capitalize(k.verb)
	if all {
		var n int64
		var err error
		where := "the " + setWord(src) + " set"
		if queue != "" {
			var st api.QueueStat
			st, err = a.sk.Queue(ctx, queue)
			n, where = st.Size, "queue "+queue
		} else {
			n, err = a.sk.Size(ctx, src)
		}
		if err != nil {
			return "", a.redisErr(err)
		}
		return fmt.Sprintf("%s all %s %s of %s?", verb, count(n), plural(int(n), "entry", "entries"), where), nil
	}
	where := "the " + setWord(src) + " set"
	if queue != "" {
		where = "queue " + queue
	}
	return fmt.Sprintf("%s every entry of %s with %s?", verb, where, ff.describe()), nil
}

// countMatches is --dry-run: how many entries the selection matches.
func (a *app) countMatches(cmd *cobra.Command, src api.SetName, queue string, f *api.Filter) (*api.Result, error) {
	res := &api.Result{}
	found := map[string]bool{}
	visit := func(e *api.Entry) error {
		res.Matched++
		found[e.JID()] = true
		return nil
	}
	var err error
	if queue != "" {
		err = a.sk.EachInQueue(cmd.Context(), queue, f, visit)
	} else {
		err = a.sk.Each(cmd.Context(), src, f, visit)
	}
	for _, j := range f.JIDs {
		if !found[j] {
			res.NotFound = append(res.NotFound, j)
		}
	}
	return res, err
}

func (a *app) printResult(k actKind, from, where string, dryRun bool, res *api.Result) error {
	if a.jsonOut {
		out := resultJSON{Action: k.verb, From: from, DryRun: dryRun, Matched: res.Matched, Done: res.Done,
			Gone: res.Gone, Skipped: res.Skipped, Skips: []skipJSON{}, NotFound: nonNil(res.NotFound)}
		for _, s := range res.Skips {
			out.Skips = append(out.Skips, skipJSON{JID: s.JID, Reason: s.Reason})
		}
		return writeJSON(a.stdout, out)
	}
	if dryRun {
		fmt.Fprintf(a.stdout, "Would %s %d %s of %s (dry run, nothing changed).\n", k.verb, res.Matched,
			plural(res.Matched, "entry", "entries"), where)
		return nil
	}
	dest := ""
	switch k.action {
	case api.ActionRetry:
		dest = plural(res.Done, " onto its queue", " onto their queues")
	case api.ActionKill:
		dest = " to the dead set"
	}
	fmt.Fprintf(a.stdout, "%s %d %s of %s%s.\n", k.past, res.Done, plural(res.Done, "entry", "entries"), where, dest)
	if res.Gone > 0 {
		fmt.Fprintf(a.stdout, "%d matched %s had already left %s.\n", res.Gone, plural(res.Gone, "entry", "entries"), where)
	}
	if res.Skipped > 0 {
		fmt.Fprintf(a.stdout, "%d %s left in place:\n", res.Skipped, plural(res.Skipped, "entry", "entries"))
		for _, s := range res.Skips {
			fmt.Fprintf(a.stdout, "  %s: %s\n", clean(orDash(s.JID), 64), clean(s.Reason, 200))
		}
	}
	return nil
}
