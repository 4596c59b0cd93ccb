package peering

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: a node owns
// every goroutine it starts and must have stopped them all when Run
// returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
