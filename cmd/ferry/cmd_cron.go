package main

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/periodic"
)

// cronJSON is one periodic job in --json output.
type cronJSON struct {
	Name        string     `json:"name"`
	Spec        string     `json:"spec"`
	Class       string     `json:"class,omitempty"`
	Queue       string     `json:"queue,omitempty"`
	Status      string     `json:"status"`
	Description string     `json:"description,omitempty"`
	LastEnqueue *time.Time `json:"last_enqueue,omitempty"`
	Next        *time.Time `json:"next,omitempty"`
	Error       string     `json:"error,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func newCronCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cron",
		Short: "Periodic jobs (sidekiq-cron's, Ruby's and Ferry's) with their next and last run",
		Long: `Lists the periodic jobs stored the way sidekiq-cron stores them (package periodic and
Ruby's sidekiq-cron share that storage): name, spec, class, queue, status, the last tick
enqueued and the next one. A job neither side can run (a bad spec) shows why.
"ferry cron enable NAME..." and "ferry cron disable NAME..." switch jobs on and off, as
the sidekiq-cron Web tab's buttons do; both Ruby's poller and Ferry honour it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.connect(); err != nil {
				return err
			}
			jobs, err := periodic.List(cmd.Context(), a.rdb, a.namespace)
			if err != nil {
				return a.redisErr(err)
			}
			if a.jsonOut {
				out := make([]cronJSON, 0, len(jobs))
				for _, j := range jobs {
					c := cronJSON{Name: j.Name, Spec: j.Spec, Class: j.Class, Queue: j.Queue, Status: j.Status,
						Description: j.Description, LastEnqueue: timePtr(j.LastEnqueue), Next: timePtr(j.Next)}
					if j.Err != nil {
						c.Error = j.Err.Error()
					}
					out = append(out, c)
				}
				return writeJSON(a.stdout, out)
			}
			now := a.now()
			t := newTable(a.stdout, "NAME", "SPEC", "CLASS", "QUEUE", "STATUS", "LAST", "NEXT").cut(40)
			for _, j := range jobs {
				status := j.Status
				if j.Err != nil {
					status = "cannot run: " + j.Err.Error()
				}
				t.row(j.Name, j.Spec, j.Class, j.Queue, status, relative(j.LastEnqueue, now), relative(j.Next, now))
			}
			t.flush()
			return nil
		},
	}
	cmd.AddCommand(newCronSwitchCmd(a, "enable", "Enable periodic jobs by name", periodic.Enable),
		newCronSwitchCmd(a, "disable", "Disable periodic jobs by name", periodic.Disable))
	return cmd
}

func newCronSwitchCmd(a *app, use, short string, do func(ctx context.Context, rdb redis.UniversalClient, namespace, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := a.connect(); err != nil {
				return err
			}
			var missing []string
			for _, name := range names {
				err := do(cmd.Context(), a.rdb, a.namespace, name)
				switch {
				case errors.Is(err, periodic.ErrNotFound):
					missing = append(missing, name)
				case err != nil:
					return a.redisErr(err)
				}
			}
			if len(missing) > 0 {
				return notFoundErr("no periodic job named %q", missing)
			}
			return nil
		},
	}
}
