package periodic_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/periodic"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// Environment of the scheduler child process (TestHelperSchedulerProcess).
const (
	childRedisEnv = "FERRY_PERIODIC_CHILD_REDIS"
	childJobEnv   = "FERRY_PERIODIC_CHILD_JOB"
	childBlockEnv = "FERRY_PERIODIC_CHILD_BLOCK" // "before" or "after" the first push, or ""
)

// TestHelperSchedulerProcess is not a test: run by TestSIGKILLMidTick as a child process,
// it runs a scheduler with one every-second job until SIGTERM. With childBlockEnv set, its
// first push blocks forever, before or after writing the job, and it prints "BLOCKED" so
// that the parent can kill it there.
func TestHelperSchedulerProcess(t *testing.T) {
	url := os.Getenv(childRedisEnv)
	if url == "" {
		t.Skip("helper process for TestSIGKILLMidTick")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	client := sidekiq.NewClient(rdb, nil)
	if block := os.Getenv(childBlockEnv); block != "" {
		client.Use(sidekiq.PushFunc(func(ctx context.Context, j *sidekiq.Job, next func(context.Context) error) error {
			if block == "after" {
				if err := next(ctx); err != nil {
					return err
				}
			}
			fmt.Printf("BLOCKED %s\n", j.JID)
			select {}
		}))
	}
	sched := periodic.New(rdb, client, &periodic.Config{RefreshInterval: 200 * time.Millisecond, RecoverAfter: time.Second})
	if err := sched.Add(periodic.Job{Name: os.Getenv(childJobEnv), Spec: "* * * * * *", Class: "KillJob", Queue: "kill"}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("RUNNING")
	_ = sched.Run(ctx)
}

// child is a scheduler child process and the lines it prints.
type child struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func startChild(t *testing.T, url, job, block string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSchedulerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childRedisEnv+"="+url, childJobEnv+"="+job, childBlockEnv+"="+block)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 100), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

// waitLine waits for a line starting with prefix.
func (c *child) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-c.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-c.done:
			t.Fatalf("child exited before printing %q", prefix)
		case <-timeout:
			t.Fatalf("child did not print %q within 60 s", prefix)
		}
	}
}

// stop sends SIGTERM and waits for the child to exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not stop within 30 s of SIGTERM")
	}
}

// TestSIGKILLMidTick: a scheduler process SIGKILLed in the middle of a tick (it has
// claimed the tick and is pushing its job: before the job is written, or after) loses
// nothing and duplicates nothing: two other scheduler processes push the claimed tick
// once if it was not pushed, not at all if it was, and go on with the next ticks. At the
// end every claimed tick (but the one seeded at registration) has exactly one job, named
// by its push guard, and no claim is left pending.
func TestSIGKILLMidTick(t *testing.T) {
	t.Parallel()
	for _, block := range []string{"before", "after"} {
		t.Run("killed "+block+" the push", func(t *testing.T) {
			t.Parallel()
			db := testsuite.RealRedis(t)
			ctx := context.Background()
			job := "kill_" + block
			k := startChild(t, db.URL, job, block)
			blocked := strings.TrimPrefix(k.waitLine(t, "BLOCKED "), "BLOCKED ")
			if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-k.done
			if n := db.Client.ZCard(ctx, "ferry:cron:pending").Val(); n != 1 {
				t.Fatalf("%d pending claims after the kill, want 1", n)
			}
			wantBefore := int64(0)
			if block == "after" {
				wantBefore = 1
			}
			if n := queueLen(t, db.Client, "queue:kill"); n != wantBefore {
				t.Fatalf("%d jobs after the kill, want %d", n, wantBefore)
			}
			ticksAtKill := db.Client.ZCard(ctx, "cron_job:"+job+":enqueued").Val()
			var others []*child
			for range 2 {
				c := startChild(t, db.URL, job, "")
				c.waitLine(t, "RUNNING")
				others = append(others, c)
			}
			testutil.Eventually(t, 60*time.Second, "the claim recovered and 5 more ticks", func() bool {
				return db.Client.ZCard(ctx, "ferry:cron:pending").Val() == 0 &&
					db.Client.ZCard(ctx, "cron_job:"+job+":enqueued").Val() >= ticksAtKill+5
			})
			for _, c := range others {
				c.stop(t)
			}
			claimed := db.Client.ZCard(ctx, "cron_job:"+job+":enqueued").Val()
			checkOnePerTick(t, db.Client, job, "queue:kill", claimed-1)
			if block == "after" && !queueHolds(t, db.Client, "queue:kill", blocked) {
				t.Fatalf("the job pushed before the kill (%s) is not in the queue", blocked)
			}
		})
	}
}

// checkOnePerTick asserts that queue holds exactly want jobs, that the job has want push
// guards, each naming a different job of the queue, and that no claim is pending.
func checkOnePerTick(t *testing.T, rdb redis.UniversalClient, job, queue string, want int64) {
	t.Helper()
	ctx := context.Background()
	raw, err := rdb.LRange(ctx, queue, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != want {
		t.Fatalf("%d jobs in %s for %d claimed ticks", len(raw), queue, want)
	}
	jids := map[string]int{}
	for _, r := range raw {
		j, err := sidekiq.ParseJobString(r)
		if err != nil {
			t.Fatal(err)
		}
		jids[j.JID]++
	}
	var guards []string
	iter := rdb.Scan(ctx, 0, "ferry:cron:pushed:*", 1000).Iterator()
	for iter.Next(ctx) {
		guards = append(guards, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if int64(len(guards)) != want {
		t.Fatalf("%d push guards for %d claimed ticks", len(guards), want)
	}
	for _, g := range guards {
		jid := rdb.Get(ctx, g).Val()
		if jids[jid] != 1 {
			t.Fatalf("guard %s names job %s, %d times in the queue", g, jid, jids[jid])
		}
	}
	if n := rdb.ZCard(ctx, "ferry:cron:pending").Val(); n != 0 {
		t.Fatalf("%d claims left pending", n)
	}
}

// queueHolds reports whether a job with this jid is in queue.
func queueHolds(t *testing.T, rdb redis.UniversalClient, queue, jid string) bool {
	t.Helper()
	raw, err := rdb.LRange(context.Background(), queue, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range raw {
		if strings.Contains(r, `"jid":"`+jid+`"`) {
			return true
		}
	}
	return false
}
