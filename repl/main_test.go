package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// lineRecorder is an io.Writer that insists on what plain mode promises:
// every Write is exactly one line ending in "\n".
type lineRecorder struct {
	mu     sync.Mutex
	lines  []string
	broken []string
}

func (w *lineRecorder) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := string(b)
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		w.broken = append(w.broken, s)
	}
	w.lines = append(w.lines, strings.TrimSuffix(s, "\n"))
	return len(b), nil
}

func (w *lineRecorder) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// check fails the test if any Write was not exactly one line.
func (w *lineRecorder) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.broken) > 0 {
		t.Errorf("writes that were not exactly one line: %q", w.broken)
	}
}

// syncBuffer collects terminal output from a pty.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// basicNode implements only Node and records what it is asked to do.
type basicNode struct {
	mu      sync.Mutex
	calls   []string
	users   []User
	payload []byte
	err     error    // returned by every method that can fail
	display *Display // when set, Say shows the line as a real node does
}

func (n *basicNode) record(format string, args ...any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, fmt.Sprintf(format, args...))
	return n.err
}

func (n *basicNode) Calls() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}

func (n *basicNode) Say(_ context.Context, text string) error {
	if err := n.record("say %q", text); err != nil {
		return err
	}
	if n.display != nil {
		n.display.ShowChat(time.Now(), "me", text)
	}
	return nil
}

func (n *basicNode) Users() []User { return n.users }

func (n *basicNode) PeersPayload() ([]byte, error) {
	if n.err != nil {
		return nil, n.err
	}
	return n.payload, nil
}

// fullNode implements every optional interface as well.
type fullNode struct {
	basicNode
	names   []string
	history []HistoryLine
	bans    []BanEntry
	peers   []KnownPeer
	reach   string
}

func (n *fullNode) Msg(_ context.Context, name, text string) error {
	return n.record("msg %q %q", name, text)
}
func (n *fullNode) Nick(_ context.Context, name string) error { return n.record("nick %q", name) }
func (n *fullNode) Kick(_ context.Context, name string) error { return n.record("kick %q", name) }
func (n *fullNode) Ban(_ context.Context, name string, d time.Duration) error {
	return n.record("ban %q %v", name, d)
}
func (n *fullNode) Unban(_ context.Context, name string) error { return n.record("unban %q", name) }
func (n *fullNode) Bans() ([]BanEntry, error)                  { return n.bans, n.record("bans") }
func (n *fullNode) History(k int) ([]HistoryLine, error)       { return n.history, n.record("history %d", k) }
func (n *fullNode) Connect(_ context.Context, addr string) error {
	return n.record("connect %q", addr)
}
func (n *fullNode) KnownPeers() ([]KnownPeer, error) { return n.peers, n.record("peers") }
func (n *fullNode) Names() []string                  { return n.names }
func (n *fullNode) ReachLine() string {
	n.record("reach")
	return n.reach
}

var errBoom = errors.New("boom")
