package eventlog_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: every Log
// starts a writer that Close must stop. It also removes the benchmarks'
// shared fixtures, which outlive any one benchmark.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		removeFixtures()
		os.Exit(code)
	}))
}
