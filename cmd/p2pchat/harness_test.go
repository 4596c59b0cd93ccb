package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
	"go.uber.org/goleak"
)

// p2pchat is the binary under test, built once by TestMain.
var p2pchat e2e.Binary

// TestMain builds the real binary for the end-to-end tests, runs the
// tests, and then checks that no goroutine of the harness outlived them.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "p2pchat-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if p2pchat, err = e2e.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left behind: %v\n", err)
			return 1
		}
	}
	return code
}

// newDataDir returns a data directory path that does not exist yet, so
// that the node's first start creates it.
func newDataDir(t *testing.T) string {
	return filepath.Join(t.TempDir(), "node")
}

// startNode starts a first-time node named name on a free port with its
// own data directory, and waits until it listens.
func startNode(t *testing.T, name string, extra ...string) *e2e.Node {
	t.Helper()
	args := append([]string{"--port", "0", "--uname", name, "--data-dir", newDataDir(t)}, extra...)
	return p2pchat.StartListening(t, args...)
}

// restart starts the node that lived in dir again, with only --data-dir
// and extra, and waits until it listens.
func restart(t *testing.T, dir string, extra ...string) *e2e.Node {
	t.Helper()
	return p2pchat.StartListening(t, append([]string{"--data-dir", dir}, extra...)...)
}
