package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/api"
)

type processJSON struct {
	Identity    string          `json:"identity"`
	Runtime     string          `json:"runtime"`
	Hostname    string          `json:"hostname"`
	PID         int64           `json:"pid"`
	Tag         string          `json:"tag"`
	Labels      []string        `json:"labels"`
	Queues      []string        `json:"queues"`
	Concurrency int64           `json:"concurrency"`
	Busy        int64           `json:"busy"`
	Quiet       bool            `json:"quiet"`
	Beat        jsonTime        `json:"beat"`
	StartedAt   jsonTime        `json:"started_at"`
	RSSKB       int64           `json:"rss_kb"`
	RTTMicros   int64           `json:"rtt_us"`
	Version     string          `json:"version"`
	Embedded    bool            `json:"embedded"`
	Info        json.RawMessage `json:"info,omitempty"`
	Jobs        []workJSON      `json:"jobs,omitempty"`
}

type workJSON struct {
	Process string          `json:"process"`
	Thread  string          `json:"thread"`
	Queue   string          `json:"queue"`
	RunAt   jsonTime        `json:"run_at"`
	JID     string          `json:"jid"`
	Class   string          `json:"class"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func toWorkJSON(w api.Work) workJSON {
	out := workJSON{Process: w.Process, Thread: w.Thread, Queue: w.Queue, RunAt: jsonTime(w.RunAt)}
	if w.Job != nil {
		out.JID, out.Class = w.Job.JID, api.DisplayClass(w.Job)
	}
	if json.Valid([]byte(w.Payload)) {
		out.Payload = json.RawMessage(w.Payload)
	}
	return out
}

func newPsCmd(a *app) *cobra.Command {
	var jobs bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "Live processes, Ruby Sidekiq and Ferry (Go), and with --jobs what they run",
		Long: `Lists every live process in Sidekiq's processes set, Ruby Sidekiq and Ferry alike
(RUNTIME says which), with its busy and total worker slots, queues, last heartbeat and
state. --jobs also lists the jobs running now. Processes whose heartbeat expired are left
out (and not removed: ferry only reads here).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.connect(); err != nil {
				return err
			}
			ctx := cmd.Context()
			procs, err := a.sk.Processes(ctx)
			if err != nil {
				return a.redisErr(err)
			}
			var work []api.Work
			if jobs {
				if work, err = a.sk.Workers(ctx); err != nil {
					return a.redisErr(err)
				}
			}
			now := a.now()
			if a.jsonOut {
				arr := newJSONArray(a.stdout)
				for _, p := range procs {
					pj := processJSON{
						Identity: p.Identity, Runtime: p.Runtime(), Hostname: p.Hostname, PID: p.PID,
						Tag: p.Tag, Labels: nonNil(p.Labels), Queues: nonNil(p.Queues),
						Concurrency: p.Concurrency, Busy: p.Busy, Quiet: p.Quiet,
						Beat: jsonTime(p.Beat), StartedAt: jsonTime(p.StartedAt), RSSKB: p.RSSKB,
						RTTMicros: p.RTT.Microseconds(), Version: p.Version, Embedded: p.Embedded,
						Info: p.Info,
					}
					if jobs {
						pj.Jobs = []workJSON{}
						for _, w := range work {
							if w.Process == p.Identity {
								pj.Jobs = append(pj.Jobs, toWorkJSON(w))
							}
						}
					}
					if err := arr.add(pj); err != nil {
						return err
					}
				}
				return arr.close()
			}
			t := newTable(a.stdout, "IDENTITY", "RUNTIME", "TAG", "BUSY", "QUEUES", "BEAT", "STARTED", "RSS", "STATE", "VERSION").
				cut(60, 0, 20, 0, 40, 0, 0, 0, 0, 20)
			for _, p := range procs {
				state := "running"
				if p.Quiet {
					state = "quiet"
				}
				t.row(p.Identity, p.Runtime(), p.Tag, fmt.Sprintf("%d/%d", p.Busy, p.Concurrency),
					strings.Join(p.Queues, ","), relative(p.Beat, now), relative(p.StartedAt, now),
					rss(p.RSSKB), state, p.Version)
			}
			t.flush()
			fmt.Fprintf(a.stdout, "%d %s\n", len(procs), plural(len(procs), "process", "processes"))
			if jobs {
				fmt.Fprintln(a.stdout)
				w := newTable(a.stdout, "PROCESS", "THREAD", "QUEUE", "JID", "CLASS", "RUNNING").cut(60, 16, 30, 30, 50, 0)
				for _, j := range work {
					jid, class := "-", "(invalid payload)"
					if j.Job != nil {
						jid, class = j.Job.JID, api.DisplayClass(j.Job)
					}
					w.row(j.Process, j.Thread, j.Queue, jid, class, human(now.Sub(j.RunAt)))
				}
				w.flush()
				fmt.Fprintf(a.stdout, "%d running %s\n", len(work), plural(len(work), "job", "jobs"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jobs, "jobs", false, "also list the jobs running now")
	return cmd
}

func rss(kb int64) string {
	if kb <= 0 {
		return "-"
	}
	if kb < 1024 {
		return fmt.Sprintf("%d KB", kb)
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
