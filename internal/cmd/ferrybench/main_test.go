package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for ferrybench as the Ferry worker child: run
// starts os.Executable() with FERRYBENCH_CHILD=ferry.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "ferry" {
		if err := ferryChild(os.Args[1:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "ferrybench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
