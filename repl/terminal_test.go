//go:build linux || darwin || freebsd

package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chzyer/readline"
	"github.com/creack/pty"
	"go.uber.org/goleak"
)

// ptyTerm is a pseudo-terminal: the REPL runs on its tty side, and the test
// types on the master side and reads the screen from it.
type ptyTerm struct {
	master, tty *os.File
	screen      syncBuffer
	readDone    chan struct{}
}

func newPtyTerm(t *testing.T) *ptyTerm {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	p := &ptyTerm{master: master, tty: tty, readDone: make(chan struct{})}
	go func() {
		defer close(p.readDone)
		_, _ = io.Copy(&p.screen, master)
	}()
	t.Cleanup(p.close)
	return p
}

// close hangs up: closing the tty makes the master's read fail, which
// ends the screen reader.
func (p *ptyTerm) close() {
	p.tty.Close()
	<-p.readDone
	p.master.Close()
}

func (p *ptyTerm) typeKeys(t *testing.T, keys string) {
	t.Helper()
	if _, err := p.master.WriteString(keys); err != nil {
		t.Fatal(err)
	}
}

// waitScreen waits until the screen, from byte offset from on, contains
// want, and returns the offset just past it.
func (p *ptyTerm) waitScreen(t *testing.T, from int, want string) int {
	t.Helper()
	end := -1
	waitFor(t, 5*time.Second, fmt.Sprintf("%q on screen", want), func() bool {
		s := p.screen.String()
		if i := strings.Index(s[from:], want); i >= 0 {
			end = from + i + len(want)
			return true
		}
		return false
	})
	return end
}

// ttyMode returns the tty's settings, to check that Run restores them.
func (p *ptyTerm) ttyMode(t *testing.T) *readline.State {
	t.Helper()
	var st *readline.State
	var err error
	if !withFd(p.tty, func(fd uintptr) { st, err = readline.GetState(int(fd)) }) || err != nil {
		t.Fatalf("tty state: %v", err)
	}
	return st
}

// startTerminal runs a terminal-mode REPL on the pty and waits for its
// prompt. The returned wait gives Run's result.
func startTerminal(t *testing.T, p *ptyTerm, ctx context.Context, node Node, opts Options) (r *REPL, wait func() error) {
	t.Helper()
	opts.Terminal = true
	r = New(p.tty, p.tty, opts)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, node) }()
	p.waitScreen(t, 0, "> ")
	return r, func() error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
			return nil
		}
	}
}

func TestTerminalIncomingLineDoesNotGarbleTyping(t *testing.T) {
	p := newPtyTerm(t)
	before := p.ttyMode(t)
	node := &basicNode{}
	r, wait := startTerminal(t, p, context.Background(), node, Options{})

	p.typeKeys(t, "hello wo")
	at := p.waitScreen(t, 0, "hello wo")

	// A peer's line arrives while the user is halfway through a word; a
	// hostile escape sequence in it must reach the screen defused.
	r.Display().ShowChat(time.Now(), "Bob", "incoming \x1b[31mred")
	at = p.waitScreen(t, at, "<Bob> incoming ^[[31mred")
	// The prompt and the half-typed line are drawn again below it.
	p.waitScreen(t, at, "> hello wo")

	p.typeKeys(t, "rld\r")
	waitFor(t, 5*time.Second, "the line to be said", func() bool { return len(node.Calls()) == 1 })
	if got := node.Calls(); got[0] != `say "hello world"` {
		t.Fatalf("calls = %q, want exactly the typed line", got)
	}
	if strings.Contains(p.screen.String(), "\x1b[31m") {
		t.Error("a raw escape sequence from a peer reached the terminal")
	}

	p.typeKeys(t, "/quit\r")
	if err := wait(); err != nil {
		t.Fatalf("Run = %v, want nil after /quit", err)
	}
	if len(node.Calls()) != 1 {
		t.Errorf("calls = %q, want /quit to send nothing", node.Calls())
	}
	if after := p.ttyMode(t); !reflect.DeepEqual(before, after) {
		t.Error("Run left the terminal in another mode than it found it")
	}
}

func TestTerminalCompletesCommandsAndNames(t *testing.T) {
	p := newPtyTerm(t)
	node := &fullNode{names: []string{"Bob", "Carol", "Carl Jr", "Carol"}}
	_, wait := startTerminal(t, p, context.Background(), node, Options{})

	p.typeKeys(t, "/he\t")
	at := p.waitScreen(t, 0, "/help ")
	p.typeKeys(t, "\r")
	at = p.waitScreen(t, at, "/msg NAME text")

	p.typeKeys(t, "/msg Ca\t")
	at = p.waitScreen(t, at, "/msg Carol ")
	p.typeKeys(t, "hi\r")
	waitFor(t, 5*time.Second, "the message", func() bool { return len(node.Calls()) == 1 })

	p.typeKeys(t, `/msg "Carl`+"\t")
	p.waitScreen(t, at, `/msg "Carl Jr" `)
	p.typeKeys(t, "yo\r")
	waitFor(t, 5*time.Second, "the second message", func() bool { return len(node.Calls()) == 2 })

	want := []string{`msg "Carol" "hi"`, `msg "Carl Jr" "yo"`}
	if got := node.Calls(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	p.typeKeys(t, "/quit\r")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestTerminalRecallsHistoryAcrossRuns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "history")

	p := newPtyTerm(t)
	node := &basicNode{}
	_, wait := startTerminal(t, p, context.Background(), node, Options{HistoryFile: file})
	p.typeKeys(t, "first\r")
	waitFor(t, 5*time.Second, "the first line", func() bool { return len(node.Calls()) == 1 })
	p.typeKeys(t, "\x1b[A\r") // up arrow, enter
	waitFor(t, 5*time.Second, "the recalled line", func() bool { return len(node.Calls()) == 2 })
	p.typeKeys(t, "/quit\r")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if got := node.Calls(); got[1] != `say "first"` {
		t.Fatalf("calls = %q, want the recalled line said again", got)
	}

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "first\n/quit\n" {
		t.Errorf("history file = %q, want each distinct line once", data)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("history file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	// A new run starts with the old lines.
	p2 := newPtyTerm(t)
	node2 := &basicNode{}
	_, wait2 := startTerminal(t, p2, context.Background(), node2, Options{HistoryFile: file})
	p2.typeKeys(t, "\x1b[A\x1b[A\r")
	waitFor(t, 5*time.Second, "the line from the last run", func() bool { return len(node2.Calls()) == 1 })
	if got := node2.Calls(); got[0] != `say "first"` {
		t.Fatalf("calls = %q, want the line from the last run", got)
	}
	p2.typeKeys(t, "\x04")
	if err := wait2(); err != nil {
		t.Fatal(err)
	}
}

func TestTerminalEndsOnKeys(t *testing.T) {
	tests := []struct {
		name      string
		keys      string
		wantCalls []string
	}{
		{name: "ctrl-d on an empty line", keys: "\x04"},
		{name: "ctrl-c on an empty line", keys: "\x03"},
		{name: "ctrl-c clears a typed line", keys: "oops\x03kept\r\x03", wantCalls: []string{`say "kept"`}},
		{name: "ctrl-d after a line", keys: "one\r\x04", wantCalls: []string{`say "one"`}},
		{name: "ctrl-z and ctrl-space are ignored", keys: "a\x1ab\x00c\r\x04", wantCalls: []string{`say "abc"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPtyTerm(t)
			node := &basicNode{}
			_, wait := startTerminal(t, p, context.Background(), node, Options{})
			p.typeKeys(t, tt.keys)
			if err := wait(); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			if got := node.Calls(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.wantCalls) {
				t.Errorf("calls = %q, want %q", got, tt.wantCalls)
			}
		})
	}
}

func TestTerminalStopsWhenContextEndsMidLine(t *testing.T) {
	p := newPtyTerm(t)
	before := p.ttyMode(t)
	ignore := goleak.IgnoreCurrent()

	node := &basicNode{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, wait := startTerminal(t, p, ctx, node, Options{})
	p.typeKeys(t, "half a li")
	p.waitScreen(t, 0, "half a li")
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if got := node.Calls(); len(got) != 0 {
		t.Errorf("calls = %q, want the half-typed line not sent", got)
	}
	// Every goroutine of the line editor and the input ends with Run,
	// though the terminal stays open.
	goleak.VerifyNone(t, ignore)
	if after := p.ttyMode(t); !reflect.DeepEqual(before, after) {
		t.Error("Run left the terminal in another mode than it found it")
	}
}

func TestTerminalShowsNodeOutputAndErrors(t *testing.T) {
	p := newPtyTerm(t)
	node := &basicNode{err: errBoom}
	_, wait := startTerminal(t, p, context.Background(), node, Options{Prompt: "chat> "})
	p.typeKeys(t, "/nope\r")
	at := p.waitScreen(t, 0, "*** unknown command /nope (try /help)")
	p.typeKeys(t, "hi\r")
	p.waitScreen(t, at, "*** error: boom")
	p.waitScreen(t, at, "chat> ")
	p.typeKeys(t, "/quit\r")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestTerminalPromptFollowsNick(t *testing.T) {
	p := newPtyTerm(t)
	node := &fullNode{}
	_, wait := startTerminal(t, p, context.Background(), node, Options{Name: "Alice"})
	at := p.waitScreen(t, 0, "Alice> ")
	p.typeKeys(t, "/nick Alicia\r")
	p.waitScreen(t, at, "Alicia> ")
	p.typeKeys(t, "/quit\r")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestTerminalCompletesCommandsIgnoringCase(t *testing.T) {
	p := newPtyTerm(t)
	node := &fullNode{}
	_, wait := startTerminal(t, p, context.Background(), node, Options{})
	p.typeKeys(t, "/HE\t")
	at := p.waitScreen(t, 0, "/HElp ")
	p.typeKeys(t, "\r")
	p.waitScreen(t, at, "/msg NAME text")
	p.typeKeys(t, "/quit\r")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestTerminalIndentsThePeersPayload(t *testing.T) {
	p := newPtyTerm(t)
	node := &basicNode{payload: []byte(`{"peers":[{"id":"ab","name":"Bob"}]}`)}
	_, wait := startTerminal(t, p, context.Background(), node, Options{})
	p.typeKeys(t, "/p\r")
	p.waitScreen(t, 0, `"name": "Bob"`)
	p.typeKeys(t, "/quit\r")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// editorAt is readline's terminal as promptWriter sees it: it starts
// reading after readyAfter questions.
type editorAt struct {
	readyAfter int64
	asked      atomic.Int64
}

func (e *editorAt) IsReading() bool { return e.asked.Add(1) > e.readyAfter }

// askedWhenWritten records how often the editor had been asked when the
// write reached the terminal.
type askedWhenWritten struct {
	editor *editorAt
	at     []int64
}

func (w *askedWhenWritten) Write(b []byte) (int, error) {
	w.at = append(w.at, w.editor.asked.Load())
	return len(b), nil
}

// TestOutputWaitsUntilTheEditorReads: a line shown while a Readline call
// has drawn its prompt but readline does not read yet is held until it
// does, so that readline clears the prompt and draws it again below; with
// no Readline under way it goes out at once, and an editor that never
// reads holds it only for a moment.
func TestOutputWaitsUntilTheEditorReads(t *testing.T) {
	t.Run("prompt drawn, not reading yet", func(t *testing.T) {
		editor := &editorAt{readyAfter: 3}
		term := &askedWhenWritten{editor: editor}
		w := &promptWriter{out: term, term: editor}
		w.inReadline.Store(true)
		if _, err := w.Write([]byte("*** you are now known as Alicia\n")); err != nil {
			t.Fatal(err)
		}
		if len(term.at) != 1 || term.at[0] <= editor.readyAfter {
			t.Errorf("written after %v questions, want once, after the editor read (question %d)", term.at, editor.readyAfter+1)
		}
	})
	t.Run("no Readline under way", func(t *testing.T) {
		editor := &editorAt{readyAfter: 1 << 40}
		term := &askedWhenWritten{editor: editor}
		w := &promptWriter{out: term, term: editor}
		if _, err := w.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
		if len(term.at) != 1 || term.at[0] != 0 {
			t.Errorf("written after %v questions, want once, at once", term.at)
		}
	})
	t.Run("an editor that never reads", func(t *testing.T) {
		editor := &editorAt{readyAfter: 1 << 40}
		term := &askedWhenWritten{editor: editor}
		w := &promptWriter{out: term, term: editor}
		w.inReadline.Store(true)
		if _, err := w.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
		if len(term.at) != 1 {
			t.Errorf("written %d times, want once", len(term.at))
		}
	})
}
