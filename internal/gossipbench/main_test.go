package gossipbench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that every goroutine the benchmarks start, theirs and
// the hosts', has stopped when they end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
