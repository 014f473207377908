package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/api"
)

type statsJSON struct {
	Processed           int64          `json:"processed"`
	Failed              int64          `json:"failed"`
	Busy                int64          `json:"busy"`
	Enqueued            int64          `json:"enqueued"`
	Scheduled           int64          `json:"scheduled"`
	Retries             int64          `json:"retries"`
	Dead                int64          `json:"dead"`
	Processes           int64          `json:"processes"`
	DefaultQueueLatency seconds        `json:"default_queue_latency"`
	Queues              []queueJSON    `json:"queues"`
	History             []dayStatsJSON `json:"history,omitempty"`
	At                  jsonTime       `json:"at"`
}

type queueJSON struct {
	Name    string  `json:"name"`
	Size    int64   `json:"size"`
	Latency seconds `json:"latency"`
	Paused  bool    `json:"paused"`
}

type dayStatsJSON struct {
	Date      string `json:"date"`
	Processed int64  `json:"processed"`
	Failed    int64  `json:"failed"`
}

func toQueueJSON(qs []api.QueueStat) []queueJSON {
	out := make([]queueJSON, len(qs))
	for i, q := range qs {
		out[i] = queueJSON{Name: q.Name, Size: q.Size, Latency: seconds(q.Latency), Paused: q.Paused}
	}
	return out
}

func newStatsCmd(a *app) *cobra.Command {
	var days int
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Totals, set sizes, busy workers and queue latency (the dashboard)",
		Long: `Prints what Sidekiq's dashboard shows: processed and failed totals, jobs running and
waiting, the sizes of the schedule, retry and dead sets, live processes, and the latency of
queue "default". --days N adds the daily history of the last N days (UTC), newest first.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 0 || days > api.MaxHistoryDays {
				return usageErr("--days %d: want 0 to %d", days, api.MaxHistoryDays)
			}
			if err := a.connect(); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := a.sk.Stats(ctx)
			if err != nil {
				return a.redisErr(err)
			}
			var hist []api.DayStat
			if days > 0 {
				if hist, err = a.sk.History(ctx, days, st.At); err != nil {
					return a.redisErr(err)
				}
			}
			if a.jsonOut {
				out := statsJSON{
					Processed: st.Processed, Failed: st.Failed, Busy: st.Busy, Enqueued: st.Enqueued,
					Scheduled: st.Scheduled, Retries: st.Retries, Dead: st.Dead, Processes: st.Processes,
					DefaultQueueLatency: seconds(st.DefaultQueueLatency),
					Queues:              toQueueJSON(st.Queues), At: jsonTime(st.At),
				}
				for _, d := range hist {
					out.History = append(out.History, dayStatsJSON(d))
				}
				return writeJSON(a.stdout, out)
			}
			t := newTable(a.stdout, "STAT", "VALUE")
			t.row("Processed", count(st.Processed))
			t.row("Failed", count(st.Failed))
			t.row("Busy", count(st.Busy))
			t.row("Enqueued", count(st.Enqueued))
			t.row("Scheduled", count(st.Scheduled))
			t.row("Retries", count(st.Retries))
			t.row("Dead", count(st.Dead))
			t.row("Processes", count(st.Processes))
			t.row("Default queue latency", human(st.DefaultQueueLatency))
			t.flush()
			if len(hist) > 0 {
				fmt.Fprintln(a.stdout)
				h := newTable(a.stdout, "DATE", "PROCESSED", "FAILED")
				for _, d := range hist {
					h.row(d.Date, count(d.Processed), count(d.Failed))
				}
				h.flush()
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&days, "days", 0, "also print the daily history of this many days")
	return cmd
}

// noArgs refuses positional arguments with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("unexpected argument %q", args[0])
	}
	return nil
}
