package main

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/api"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

type watchJSON struct {
	statsJSON
	BusyProcesses []processSummaryJSON `json:"processes_list"`
}

type processSummaryJSON struct {
	Identity    string `json:"identity"`
	Runtime     string `json:"runtime"`
	Busy        int64  `json:"busy"`
	Concurrency int64  `json:"concurrency"`
	Quiet       bool   `json:"quiet"`
}

func newWatchCmd(a *app) *cobra.Command {
	var (
		interval time.Duration
		frames   int
		top      int
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "A live view of totals, queues and processes, redrawn every --interval",
		Long: `Redraws the totals, the busiest queues and the processes every --interval (2s) until
interrupted (Ctrl-C), or --count times. On a terminal the screen is redrawn in place;
otherwise each view is printed after the last. With --json each view is one line of JSON.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return usageErr("--interval %s: want at least 100ms", interval)
			}
			if err := a.connect(); err != nil {
				return err
			}
			ctx := cmd.Context()
			redraw := a.stdoutTerminal() && !a.jsonOut
			t := time.NewTicker(interval)
			defer t.Stop()
			for n := 1; ; n++ {
				st, err := a.sk.Stats(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return a.redisErr(err)
				}
				procs, err := a.sk.Processes(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return a.redisErr(err)
				}
				var frame bytes.Buffer
				if a.jsonOut {
					err = a.watchJSONFrame(&frame, st, procs)
				} else {
					if redraw {
						frame.WriteString(clearScreen)
					} else if n > 1 {
						frame.WriteString("\n")
					}
					a.watchFrame(&frame, st, procs, interval, top)
				}
				if err != nil {
					return err
				}
				if _, err := a.stdout.Write(frame.Bytes()); err != nil {
					return err
				}
				if frames > 0 && n >= frames {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil // Ctrl-C ends the view; that is how it is meant to end
				case <-t.C:
				}
			}
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "time between views")
	cmd.Flags().IntVar(&frames, "count", 0, "stop after this many views (0: until interrupted)")
	cmd.Flags().IntVar(&top, "top", 15, "show this many queues, largest first")
	return cmd
}

func (a *app) watchJSONFrame(w io.Writer, st *api.Stats, procs []api.Process) error {
	out := watchJSON{statsJSON: statsJSON{
		Processed: st.Processed, Failed: st.Failed, Busy: st.Busy, Enqueued: st.Enqueued,
		Scheduled: st.Scheduled, Retries: st.Retries, Dead: st.Dead, Processes: st.Processes,
		DefaultQueueLatency: seconds(st.DefaultQueueLatency), Queues: toQueueJSON(st.Queues), At: jsonTime(st.At),
	}, BusyProcesses: []processSummaryJSON{}}
	for _, p := range procs {
		out.BusyProcesses = append(out.BusyProcesses, processSummaryJSON{p.Identity, p.Runtime(), p.Busy, p.Concurrency, p.Quiet})
	}
	return writeJSON(w, out)
}

func (a *app) watchFrame(w io.Writer, st *api.Stats, procs []api.Process, interval time.Duration, top int) {
	ns := ""
	if a.namespace != "" {
		ns = " namespace " + clean(a.namespace, 40)
	}
	fmt.Fprintf(w, "ferry watch  %s%s  %s  (every %s, Ctrl-C to stop)\n\n", redactURL(a.redisTarget()), ns,
		st.At.UTC().Format("2006-01-02 15:04:05Z"), interval)
	var concurrency int64
	for _, p := range procs {
		concurrency += p.Concurrency
	}
	fmt.Fprintf(w, "Processed %s   Failed %s   Busy %s/%s   Enqueued %s\n", count(st.Processed), count(st.Failed),
		count(st.Busy), count(concurrency), count(st.Enqueued))
	fmt.Fprintf(w, "Scheduled %s   Retries %s   Dead %s   Processes %d\n\n", count(st.Scheduled), count(st.Retries),
		count(st.Dead), len(procs))
	t := newTable(w, "QUEUE", "SIZE", "LATENCY", "PAUSED").cut(50)
	for i, q := range st.Queues {
		if top > 0 && i >= top {
			break
		}
		paused := ""
		if q.Paused {
			paused = "paused"
		}
		t.row(q.Name, count(q.Size), human(q.Latency), paused)
	}
	t.flush()
	if top > 0 && len(st.Queues) > top {
		fmt.Fprintf(w, "... and %d more queues\n", len(st.Queues)-top)
	}
	fmt.Fprintln(w)
	pt := newTable(w, "PROCESS", "RUNTIME", "BUSY", "STATE").cut(60)
	for _, p := range procs {
		state := "running"
		if p.Quiet {
			state = "quiet"
		}
		pt.row(p.Identity, p.Runtime(), fmt.Sprintf("%d/%d", p.Busy, p.Concurrency), state)
	}
	pt.flush()
}
