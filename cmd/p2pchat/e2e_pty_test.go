//go:build linux || darwin || freebsd

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/p2pchat/p2pchat/internal/e2e"
	"github.com/p2pchat/p2pchat/store"
)

// screen collects what a process writes to its terminal.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFrom waits until the screen shows want at or after byte offset from,
// and returns the offset just past it.
func (s *screen) waitFrom(t *testing.T, from int, want string) int {
	t.Helper()
	end := -1
	e2e.WaitFor(t, e2e.Patience, func() bool {
		if i := strings.Index(s.String()[from:], want); i >= 0 {
			end = from + i + len(want)
			return true
		}
		return false
	}, "the terminal to show "+want)
	return end
}

func TestTheBinaryOnATerminalChatsRenamesAndQuitsOnCtrlC(t *testing.T) {
	t.Parallel()
	bob := startNode(t, "Bob")
	cmd := exec.Command(string(p2pchat), "--port", "0", "--uname", "Alice", "--data-dir", newDataDir(t), "--peer", bob.Addr())
	cmd.Env = e2e.Env()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	var scr screen
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&scr, tty)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		tty.Close()
		<-copied
		if t.Failed() {
			t.Logf("screen:\n%s", scr.String())
		}
	})

	at := scr.waitFrom(t, 0, "Alice> ")
	bob.WaitLine("*** Alice joined")
	if _, err := tty.WriteString("hello from a terminal\r"); err != nil {
		t.Fatal(err)
	}
	at = scr.waitFrom(t, at, "<Alice> hello from a terminal")
	bob.WaitLine(chatLine("Alice", "hello from a terminal"))

	bob.Send("hi Alice")
	at = scr.waitFrom(t, at, "<Bob> hi Alice")

	if _, err := tty.WriteString("/nick Alicia\r"); err != nil {
		t.Fatal(err)
	}
	at = scr.waitFrom(t, at, "you are now known as Alicia")
	scr.waitFrom(t, at, "Alicia> ")

	// Ctrl-C on an empty line quits, with exit status 0.
	if _, err := tty.WriteString("\x03"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("p2pchat on a terminal ended with %v after Ctrl-C, want exit 0", err)
		}
	case <-time.After(e2e.Patience):
		t.Fatal("p2pchat did not exit after Ctrl-C on an empty line")
	}
	bob.WaitLine("*** Alicia left")
}

func TestASecondSIGINTEndsAShutdownThatIsStuck(t *testing.T) {
	t.Parallel()
	// A log file that is a FIFO nobody reads: opening it blocks for good,
	// so the node never gets to serve and the first SIGINT cannot end it.
	fifo := filepath.Join(t.TempDir(), "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO: %v", err)
	}
	dir := newDataDir(t)
	node := p2pchat.Start(t, "--port", "0", "--uname", "Stuck", "--data-dir", dir, "--log-file", fifo)
	// The database exists once the node runs its command, after main set
	// up its signal handling; a signal before that would simply kill it.
	e2e.WaitFor(t, e2e.Patience, func() bool {
		_, err := os.Stat(filepath.Join(dir, store.FileName))
		return err == nil
	}, "the node to open its data directory")
	// Signals until it ends: the first one only asks, and the handler is
	// gone only once it has been taken, which the test cannot see.
	deadline := time.Now().Add(e2e.Patience)
	for !node.Exited() {
		if time.Now().After(deadline) {
			t.Fatalf("the node stuck opening its log file still runs after repeated SIGINTs for %v", e2e.Patience)
		}
		node.Signal(syscall.SIGINT)
		node.WaitExit(100 * time.Millisecond)
	}
}
