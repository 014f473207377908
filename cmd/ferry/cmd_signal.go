package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/api"
)

// sigKind describes quiet or stop.
type sigKind struct {
	use, short, long string
	signal           string
	verb             string
}

var (
	sigQuiet = sigKind{
		use: "quiet", signal: api.SignalQuiet, verb: "quiet",
		short: "Make processes stop fetching jobs (TSTP)",
		long: `Asks processes to stop taking new jobs; running jobs finish. The process acts at its next
heartbeat (5 s for Sidekiq 6, 10 s for Sidekiq 7 and 8 and Ferry by default), as with the
Web UI's Quiet button.`,
	}
	sigStop = sigKind{
		use: "stop", signal: api.SignalStop, verb: "stop",
		short: "Make processes shut down (TERM)",
		long: `Asks processes to shut down: they stop fetching, give running jobs their shutdown
timeout (25 s by default), push unfinished jobs back onto their queues and exit. The process
acts at its next heartbeat, as with the Web UI's Stop button.`,
	}
)

type signalJSON struct {
	Signal   string         `json:"signal"`
	Sent     []string       `json:"sent"`
	NotFound []string       `json:"not_found"`
	Skipped  []skipProcJSON `json:"skipped"`
}

type skipProcJSON struct {
	Identity string `json:"identity"`
	Reason   string `json:"reason"`
}

func newSignalCmd(k sigKind) func(*app) *cobra.Command {
	return func(a *app) *cobra.Command {
		var all, yes bool
		cmd := &cobra.Command{
			Use:   k.use + " IDENTITY... | --all",
			Short: k.short,
			Long: k.long + `

Name processes by identity (see 'ferry ps'), or all of them with --all, which asks for
confirmation on a terminal and needs --yes when standard input is not one. Embedded Sidekiq
processes refuse remote signals and are skipped.`,
			RunE: func(cmd *cobra.Command, ids []string) error {
				if all == (len(ids) > 0) {
					return usageErr("%s takes process identities or --all (see 'ferry ps')", k.verb)
				}
				if err := a.connect(); err != nil {
					return err
				}
				ctx := cmd.Context()
				out := signalJSON{Signal: k.signal, Sent: []string{}, NotFound: []string{}, Skipped: []skipProcJSON{}}
				if all {
					procs, err := a.sk.Processes(ctx)
					if err != nil {
						return a.redisErr(err)
					}
					if err := a.confirm(yes, fmt.Sprintf("%s all %d %s?", capitalize(k.verb), len(procs),
						plural(len(procs), "process", "processes"))); err != nil {
						return err
					}
					for _, p := range procs {
						if p.Embedded {
							out.Skipped = append(out.Skipped, skipProcJSON{p.Identity, "embedded"})
							continue
						}
						if err := a.sk.Signal(ctx, p.Identity, k.signal); err != nil {
							return a.redisErr(err)
						}
						out.Sent = append(out.Sent, p.Identity)
					}
				} else {
					for _, id := range ids {
						var err error
						if k.signal == api.SignalQuiet {
							err = a.sk.Quiet(ctx, id)
						} else {
							err = a.sk.Stop(ctx, id)
						}
						switch {
						case errors.Is(err, api.ErrProcessNotFound):
							out.NotFound = append(out.NotFound, id)
						case errors.Is(err, api.ErrEmbedded):
							out.Skipped = append(out.Skipped, skipProcJSON{id, "embedded"})
						case err != nil:
							return a.redisErr(err)
						default:
							out.Sent = append(out.Sent, id)
						}
					}
				}
				if a.jsonOut {
					if err := writeJSON(a.stdout, out); err != nil {
						return err
					}
				} else {
					for _, id := range out.Sent {
						fmt.Fprintf(a.stdout, "Sent %s (%s) to %s\n", k.signal, k.verb, clean(id, 120))
					}
					for _, s := range out.Skipped {
						fmt.Fprintf(a.stdout, "Skipped %s: %s process\n", clean(s.Identity, 120), s.Reason)
					}
					if len(out.Sent) > 0 {
						fmt.Fprintln(a.stdout, "Processes act on it at their next heartbeat.")
					}
				}
				if len(out.NotFound) > 0 {
					return notFoundErr("no such live process: %s (see 'ferry ps')", joinCut(out.NotFound))
				}
				return nil
			},
		}
		cmd.Flags().BoolVar(&all, "all", false, "every live process")
		cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
		return cmd
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
