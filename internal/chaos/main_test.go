package chaos

import (
	"fmt"
	"os"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"go.uber.org/goleak"
)

// TestMain runs the test binary as a chaos worker process when WorkerEnv is set (the suite
// re-executes itself to get worker processes it can SIGKILL), and otherwise runs the tests
// and then checks that none of them left a goroutine behind (after ending the Ruby fork
// servers testutil keeps for the whole process).
func TestMain(m *testing.M) {
	if os.Getenv(WorkerEnv) == "1" {
		os.Exit(RunWorker())
	}
	code := m.Run()
	testsuite.StopRubyServers()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
