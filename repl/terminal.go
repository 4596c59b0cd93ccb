package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chzyer/readline"
	"golang.org/x/term"
)

// historyLimit is how many typed lines the terminal keeps for recall.
const historyLimit = 500

// runTerminal reads lines with github.com/chzyer/readline: editing,
// history, completion, and output that redraws the line being typed.
//
// readline's Instance.Close is not used: it queues an end-of-input for a
// reader that is gone, which leaves readline's key loop blocked forever.
// Stopping the input first and then closing the Terminal ends every
// goroutine readline started. One case is left to readline: a line
// finished with Enter while no Readline waits (readline sometimes reads
// ahead while a command runs) keeps its key loop until the process exits.
func (r *REPL) runTerminal(ctx context.Context, node Node) error {
	hist, err := openHistory(r.opts.HistoryFile)
	if err != nil {
		// Losing recall across runs is no reason to refuse to chat.
		r.display.ShowSystem(err.Error())
	}
	defer hist.close()

	p := newPump(r.in)
	defer p.Close()
	tty := &ttyState{in: r.in, out: r.out}
	rl, err := readline.NewEx(&readline.Config{
		Prompt: *r.prompt.Load(),
		Stdin:  p,
		Stdout: r.out,
		Stderr: r.out,
		// readline saves entered lines itself, from its key loop: its
		// history is safe to change only from there once keys flow.
		HistoryLimit:       historyLimit,
		AutoComplete:       completer{node: node},
		UniqueEditLine:     true, // the node shows the sent line in chat form; the raw typed line would repeat it
		FuncIsTerminal:     func() bool { return true },
		FuncMakeRaw:        tty.makeRaw,
		FuncExitRaw:        tty.restore,
		FuncGetWidth:       tty.width,
		FuncOnWidthChanged: tty.onResize,
		// Keys are ignored by turning them into Ctrl-G, which only leaves
		// search or completion: refusing a key makes readline read on
		// after the line ends, into the next line.
		FuncFilterInputRune: func(c rune) (rune, bool) {
			switch {
			case c == 0 && !p.ended():
				// readline reports both the end of its input and a
				// typed NUL (Ctrl-Space) as rune 0, and takes it for
				// end of input. Only the first is.
				return readline.CharBell, true
			case c == readline.CharCtrlZ:
				// readline suspends by signalling the parent process
				// too; a suspended node also stops answering its
				// peers.
				return readline.CharBell, true
			}
			return c, true
		},
	})
	if err != nil {
		return fmt.Errorf("start line editor: %w", err)
	}
	stopResize := watchResize(tty.resized)
	out := &promptWriter{out: rl.Stdout(), term: rl.Terminal}
	r.display.setWriter(out)
	defer func() {
		r.display.setWriter(r.out)
		rl.Clean() // leave no prompt behind for whatever prints next
		p.Close()
		_ = rl.Terminal.Close()
		stopResize()
	}()
	// Before the first Readline readline's key loop is idle, so the old
	// lines can be loaded from here.
	for _, l := range hist.lines {
		_ = rl.SaveHistory(l)
	}
	stop := context.AfterFunc(ctx, func() { p.Close() })
	defer stop()

	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rl.SetPrompt(*r.prompt.Load())
		out.inReadline.Store(true)
		line, err := rl.Readline()
		out.inReadline.Store(false)
		if ctx.Err() != nil {
			// A half-typed line comes back when the input stops; it was
			// not meant to be sent.
			return ctx.Err()
		}
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			if line == "" {
				return nil
			}
			continue
		case errors.Is(err, io.EOF):
			if rerr := p.failed(); rerr != nil && !errors.Is(rerr, io.EOF) {
				return fmt.Errorf("read input: %w", rerr)
			}
			return nil
		case err != nil:
			return fmt.Errorf("read input: %w", err)
		}
		hist.add(line)
		if r.execute(ctx, node, line) {
			return nil
		}
	}
}

// promptWriter is the display's writer while readline owns the terminal.
// readline's writer (out) clears the prompt and the line being typed,
// writes, and draws them again below, but only while its key loop reads.
// A Readline call draws the prompt before it starts that loop reading, and
// a write in between goes straight to the terminal: it lands after the
// prompt, and no prompt is drawn below it. So a write made while a
// Readline call is under way and its key loop does not read yet waits for
// it, for at most maxPromptWait: the window is the time one goroutine
// takes to wake another, and output is never held for long whatever
// readline does.
type promptWriter struct {
	out        io.Writer
	term       interface{ IsReading() bool }
	inReadline atomic.Bool // set by runTerminal around each Readline call
}

// maxPromptWait bounds how long a write waits for readline to read.
const maxPromptWait = 50 * time.Millisecond

// promptPoll is how often a waiting write looks again: readline says
// when it reads only through IsReading.
const promptPoll = 50 * time.Microsecond

func (w *promptWriter) Write(b []byte) (int, error) {
	deadline := time.Now().Add(maxPromptWait)
	for w.inReadline.Load() && !w.term.IsReading() && time.Now().Before(deadline) {
		time.Sleep(promptPoll)
	}
	return w.out.Write(b)
}

// ttyState switches the terminal to raw mode and back, and measures it.
// It reaches the file descriptors through SyscallConn, not Fd: os.File.Fd
// puts the file into blocking mode, which would stop read deadlines from
// working, and with them Run's quick return when ctx ends.
type ttyState struct {
	in       io.Reader
	out      io.Writer
	mu       sync.Mutex
	saved    *readline.State
	resizeCB atomic.Pointer[func()]
}

func (t *ttyState) makeRaw() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved != nil {
		return nil
	}
	var st *readline.State
	var err error
	if !withFd(t.in, func(fd uintptr) { st, err = readline.MakeRaw(int(fd)) }) {
		return nil // not a file: there is no mode to switch
	}
	if err != nil {
		return err
	}
	t.saved = st
	return nil
}

func (t *ttyState) restore() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved == nil {
		return nil
	}
	var err error
	withFd(t.in, func(fd uintptr) { err = readline.Restore(int(fd), t.saved) })
	t.saved = nil
	return err
}

// width returns the terminal's width in columns, or 80 when it cannot be
// learned (readline needs a width to wrap and to complete).
func (t *ttyState) width() int {
	for _, f := range []any{t.out, t.in} {
		w := 0
		withFd(f, func(fd uintptr) { w, _, _ = term.GetSize(int(fd)) })
		if w > 0 {
			return w
		}
	}
	return 80
}

// onResize receives readline's callback for a changed width.
func (t *ttyState) onResize(f func()) { t.resizeCB.Store(&f) }

// resized tells readline that the width changed.
func (t *ttyState) resized() {
	if f := t.resizeCB.Load(); f != nil {
		(*f)()
	}
}

// withFd calls f with the file descriptor behind x, if it has one.
func withFd(x any, f func(fd uintptr)) bool {
	switch v := x.(type) {
	case syscall.Conn:
		rc, err := v.SyscallConn()
		if err != nil {
			return false
		}
		return rc.Control(f) == nil
	case interface{ Fd() uintptr }:
		f(v.Fd())
		return true
	}
	return false
}

// recallable reports whether a typed line may go into the history: the
// line editor shows recalled lines as they are, so none with control
// characters.
func recallable(line string) bool {
	return len(line) <= maxLineLen && !strings.ContainsFunc(line, func(r rune) bool {
		return (r < 0x20 && r != '\t') || r == 0x7f
	})
}

// historyFile keeps typed lines across runs: loaded at start, appended to
// as lines are entered, trimmed to the last historyLimit lines.
type historyFile struct {
	f     *os.File
	lines []string // as loaded
	last  string   // the line last written, not to write it twice in a row
}

// openHistory loads the history file at path (a missing one is created)
// and opens it for appending. With an empty path it keeps nothing. On an
// error it still returns a usable, file-less history.
func openHistory(path string) (*historyFile, error) {
	h := &historyFile{}
	if path == "" {
		return h, nil
	}
	lines, err := readHistory(path)
	if err != nil {
		return h, fmt.Errorf("history file %s: %w", path, err)
	}
	if len(lines) > historyLimit {
		lines = lines[len(lines)-historyLimit:]
		if err := writeHistory(path, lines); err != nil {
			return h, fmt.Errorf("history file %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return h, fmt.Errorf("history file: %w", err)
	}
	// The history holds private messages too: keep it to its owner even
	// when an older file was created more openly.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		_ = f.Chmod(0o600)
	}
	h.f, h.lines = f, lines
	if len(lines) > 0 {
		h.last = lines[len(lines)-1]
	}
	return h, nil
}

func readHistory(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	br := bufio.NewReader(f)
	for {
		line, tooLong, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return nil, err
		}
		if !tooLong && strings.TrimSpace(line) != "" && recallable(line) {
			lines = append(lines, line)
		}
	}
}

// writeHistory replaces the file atomically, so a crash leaves the old or
// the new history, never half of one.
func writeHistory(path string, lines []string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	w := bufio.NewWriter(tmp)
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// add appends an entered line, unless it is blank, repeats the line
// before, or could not be shown safely when recalled. After a failed write
// the file is given up: recall within this run still works.
func (h *historyFile) add(line string) {
	if h.f == nil || line == h.last || strings.TrimSpace(line) == "" || !recallable(line) {
		return
	}
	h.last = line
	if _, err := h.f.WriteString(line + "\n"); err != nil {
		h.f.Close()
		h.f = nil
	}
}

func (h *historyFile) close() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// completer completes command names after "/", and peer names (from a
// node that is a Completer) where a command expects one.
type completer struct{ node Node }

// Do implements readline.AutoCompleter: it returns the possible
// continuations of line[:pos] and how many runes before pos they extend.
func (c completer) Do(line []rune, pos int) ([][]rune, int) {
	head := string(line[:pos])
	if !strings.HasPrefix(head, "/") || strings.HasPrefix(head, "//") {
		return nil, 0
	}
	word, rest, inArgs := strings.Cut(head[1:], " ")
	if !inArgs {
		var out [][]rune
		for _, s := range specs {
			// Commands are parsed ignoring case, so they complete so too.
			if len(word) <= len(s.name) && strings.EqualFold(s.name[:len(word)], word) {
				out = append(out, []rune(s.name[len(word):]+" "))
			}
		}
		return out, len([]rune(word))
	}
	s, ok := lookupSpec(word)
	names, isCompleter := c.node.(Completer)
	if !ok || !s.takesName || !isCompleter {
		return nil, 0
	}
	prefix := strings.TrimLeft(rest, " ")
	quoted := strings.HasPrefix(prefix, `"`)
	if quoted {
		prefix = prefix[1:]
	}
	if strings.Contains(prefix, `"`) || !quoted && strings.ContainsAny(prefix, " \t") {
		return nil, 0 // past the name already
	}
	var found []string
	for _, n := range names.Names() {
		if !strings.HasPrefix(n, prefix) || strings.ContainsFunc(n, needsEscape) {
			continue
		}
		// A name with spaces can only be completed inside quotes, or the
		// command would read its first word as the name.
		if strings.ContainsAny(n, " \t") && !quoted {
			continue
		}
		found = append(found, n)
	}
	slices.Sort(found)
	found = slices.Compact(found)
	out := make([][]rune, 0, len(found))
	for _, n := range found {
		suffix := n[len(prefix):]
		if quoted {
			suffix += `"`
		}
		out = append(out, []rune(suffix+" "))
	}
	return out, len([]rune(prefix))
}
