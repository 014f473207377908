package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// commands lists ferry's subcommands in the order help shows them. To add one, write a
// cmd_<name>.go with a func(*app) *cobra.Command and add it here, in its group.
var commands = []struct {
	group string
	new   func(*app) *cobra.Command
}{
	{"look", newStatsCmd},
	{"look", newQueuesCmd},
	{"look", newPsCmd},
	{"look", newJobsCmd},
	{"look", newSetListCmd(setRetries)},
	{"look", newSetListCmd(setDead)},
	{"look", newSetListCmd(setScheduled)},
	{"look", newWatchCmd},
	{"look", newCronCmd},
	{"act", newActionCmd(actRetry)},
	{"act", newActionCmd(actDelete)},
	{"act", newActionCmd(actKill)},
	{"act", newEnqueueCmd},
	{"act", newSignalCmd(sigQuiet)},
	{"act", newSignalCmd(sigStop)},
}

// Help lists commands in the order of the table above, not alphabetically.
func init() { cobra.EnableCommandSorting = false }

var groups = []*cobra.Group{
	{ID: "look", Title: "Look:"},
	{ID: "act", Title: "Act:"},
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Operate Sidekiq and Ferry: queues, processes, retries, dead jobs",
		Long: `ferry shows and changes the state Sidekiq keeps in Redis, for Ruby Sidekiq and Ferry
processes alike: statistics, queues, processes, running jobs, the schedule, retry and dead
sets. It reads and writes exactly what Sidekiq's own API does.

Redis is --redis, else REDIS_URL, else redis://127.0.0.1:6379. Passwords are never printed.
Output is a readable table; --json gives JSON for scripts.

Exit codes: 0 done; 1 failed (Redis unreachable, ...); 2 bad usage; 3 a named jid, process
or queue was not found; 4 a bulk action was not confirmed; 5 some entries were left in
place.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.redisURL, "redis", "", "Redis URL (default: REDIS_URL, else "+defaultRedisURL+")")
	pf.StringVar(&a.namespace, "namespace", a.getenv("FERRY_NAMESPACE"), "key namespace, as redis-namespace used it (default: FERRY_NAMESPACE)")
	pf.BoolVar(&a.jsonOut, "json", false, "write JSON for scripts instead of tables")
	pf.StringVar(&a.timeFormat, "time-format", "seconds", "timestamps ferry writes into jobs: seconds (every Sidekiq) or millis (Sidekiq 8 only)")
	root.AddGroup(groups...)
	for _, c := range commands {
		cmd := c.new(a)
		cmd.GroupID = c.group
		root.AddCommand(cmd)
	}
	return root
}

// run executes one ferry command line and returns its exit code.
func run(ctx context.Context, a *app, args []string) int {
	if a.now == nil {
		a.now = time.Now
	}
	defer a.close()
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		msg := err.Error()
		if a.redact != nil {
			msg = a.redact.apply(msg)
		} else {
			msg = newRedactor(a.redisTarget(), "").apply(msg)
		}
		fmt.Fprintln(a.stderr, "ferry: "+msg)
		if exitCode(err) == exitUsage {
			fmt.Fprintln(a.stderr, "Run 'ferry --help' for usage.")
		}
	}
	return exitCode(err)
}

// osApp is the app of a real process: the process's streams and environment.
func osApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{
		stdin: stdin, stdout: stdout, stderr: stderr,
		getenv:         os.Getenv,
		stdinTerminal:  func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
		stdoutTerminal: func() bool { return term.IsTerminal(int(os.Stdout.Fd())) },
	}
}
