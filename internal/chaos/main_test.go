package chaos

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the test binary as a chaos worker process when WorkerEnv is set (the suite
// re-executes itself to get worker processes it can SIGKILL), and otherwise runs the tests
// and then checks that none of them left a goroutine behind.
func TestMain(m *testing.M) {
	if os.Getenv(WorkerEnv) == "1" {
		os.Exit(RunWorker())
	}
	goleak.VerifyTestMain(m)
}
