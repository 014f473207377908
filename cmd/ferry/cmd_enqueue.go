package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/sidekiq"
)

type enqueueJSON struct {
	JID   string    `json:"jid"`
	Class string    `json:"class"`
	Queue string    `json:"queue"`
	At    *jsonTime `json:"at"`
}

func newEnqueueCmd(a *app) *cobra.Command {
	var queue, in, at, retry string
	cmd := &cobra.Command{
		Use:   "enqueue CLASS [ARGS_JSON]",
		Short: "Push a job, for Ruby Sidekiq or a Ferry handler to run",
		Long: `Pushes one job of class CLASS with the arguments ARGS_JSON, a JSON array (default []),
exactly as Sidekiq::Client.push would: onto its queue (--queue, default "default") now, or
into the schedule set with --in (a duration: 90s, 15m, 36h, 7d) or --at (RFC 3339 time,
or epoch seconds). Prints the new job's jid.

  ferry enqueue HardWorker '["bob", 5]' --queue critical
  ferry enqueue ReportWorker '[]' --in 2h`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErr("enqueue takes CLASS and optionally ARGS_JSON")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			class := strings.TrimSpace(args[0])
			if class == "" {
				return usageErr("CLASS is empty")
			}
			rawArgs := "[]"
			if len(args) == 2 {
				rawArgs = args[1]
			}
			jobArgs, err := parseArgsJSON(rawArgs)
			if err != nil {
				return err
			}
			var opts []sidekiq.PushOption
			if queue != "" {
				opts = append(opts, sidekiq.Queue(queue))
			}
			if in != "" && at != "" {
				return usageErr("give --in or --at, not both")
			}
			var runAt time.Time
			if in != "" {
				d, err := parseAge("--in", in)
				if err != nil {
					return err
				}
				runAt = a.now().Add(d)
			}
			if at != "" {
				if runAt, err = parseAt(at); err != nil {
					return err
				}
			}
			if !runAt.IsZero() {
				opts = append(opts, sidekiq.At(runAt))
			}
			switch r := strings.ToLower(strings.TrimSpace(retry)); r {
			case "", "true": // retry: true is what a push writes by default
			case "false":
				opts = append(opts, sidekiq.NoRetry())
			default:
				n, err := strconv.Atoi(r)
				if err != nil || n < 0 {
					return usageErr("--retry %q: want true, false or a number of retries", retry)
				}
				opts = append(opts, sidekiq.Retry(n))
			}
			if err := a.connect(); err != nil {
				return err
			}
			job := &sidekiq.Job{Class: class, Args: jobArgs}
			jid, err := a.client().PushJob(cmd.Context(), job, opts...)
			if err != nil {
				return a.redisErr(err)
			}
			q := queue
			if q == "" {
				q = "default"
			}
			scheduled := !runAt.IsZero() && runAt.After(a.now())
			if a.jsonOut {
				out := enqueueJSON{JID: jid, Class: class, Queue: q}
				if scheduled {
					t := jsonTime(runAt)
					out.At = &t
				}
				return writeJSON(a.stdout, out)
			}
			if scheduled {
				fmt.Fprintf(a.stdout, "Scheduled %s on queue %s for %s (%s): jid %s\n", clean(class, 80), clean(q, 60),
					runAt.UTC().Format(time.RFC3339), relative(runAt, a.now()), jid)
			} else {
				fmt.Fprintf(a.stdout, "Enqueued %s on queue %s: jid %s\n", clean(class, 80), clean(q, 60), jid)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&queue, "queue", "", `queue to push to (default "default")`)
	fl.StringVar(&in, "in", "", "run after this long (90s, 15m, 36h, 7d)")
	fl.StringVar(&at, "at", "", "run at this time (RFC 3339, or epoch seconds)")
	fl.StringVar(&retry, "retry", "", "the job's retry option: true (default), false, or a number of retries")
	return cmd
}

// parseArgsJSON checks that s is one JSON array and returns it compacted; numbers keep
// their exact digits (big integers are not rounded through float64).
func parseArgsJSON(s string) (json.RawMessage, error) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "[") || !json.Valid([]byte(t)) {
		return nil, usageErr("ARGS_JSON must be a JSON array, such as '[1, \"two\"]' (got %s)", clean(s, 80))
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(t)); err != nil {
		return nil, usageErr("ARGS_JSON: %v", err)
	}
	return b.Bytes(), nil
}

// parseAt reads --at: RFC 3339 (with or without fractional seconds) or epoch seconds.
func parseAt(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1e11 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, usageErr("--at %q: want an RFC 3339 time (2030-01-02T15:04:05Z) or epoch seconds", s)
}
