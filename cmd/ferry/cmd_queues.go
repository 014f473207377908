package main

import (
	"github.com/spf13/cobra"
)

func newQueuesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "queues",
		Short: "Every queue with its size, latency and paused flag",
		Long: `Lists the queues in Sidekiq's queues set, by name, with the number of jobs waiting, the
latency (how long the oldest job has waited) and whether the queue is paused (Sidekiq Pro).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.connect(); err != nil {
				return err
			}
			qs, err := a.sk.Queues(cmd.Context())
			if err != nil {
				return a.redisErr(err)
			}
			if a.jsonOut {
				return writeJSON(a.stdout, toQueueJSON(qs))
			}
			t := newTable(a.stdout, "QUEUE", "SIZE", "LATENCY", "PAUSED").cut(60)
			for _, q := range qs {
				paused := ""
				if q.Paused {
					paused = "paused"
				}
				t.row(q.Name, count(q.Size), human(q.Latency), paused)
			}
			t.flush()
			return nil
		},
	}
}
