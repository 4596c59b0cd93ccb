package repl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Node is the chat node the REPL drives.
//
// The REPL prints only errors for actions: on success the node shows the
// outcome itself through the Display (a Say's line comes back as the node's
// own chat line), because only the node knows what actually happened.
type Node interface {
	// Say signs text, appends it durably and broadcasts it.
	Say(ctx context.Context, text string) error
	// Users returns the connected peers, never the node itself.
	Users() []User
	// PeersPayload returns the JSON PEERS payload this node would send now.
	PeersPayload() ([]byte, error)
}

// User is one connected peer as /l shows it.
type User struct {
	Name  string
	ID    eventlog.NodeID
	Addr  string
	Since time.Time
}

// The commands beyond Node are optional: Run checks for each interface with
// a type assertion and answers "*** /x is not available" when the node
// lacks it, so a node can grow one feature at a time.

// Messenger sends private messages (/msg). name is what the user typed: a
// name or name#shortid, which the node resolves.
type Messenger interface {
	Msg(ctx context.Context, name, text string) error
}

// Renamer changes this node's name (/nick); name passes eventlog.CheckName.
type Renamer interface {
	Nick(ctx context.Context, name string) error
}

// Moderator keeps peers out: /kick, /ban, /unban and /bans. Names are as
// typed (name or name#shortid); penalties fall on the node ID they resolve
// to.
type Moderator interface {
	// Kick disconnects the peer and bans it for good.
	Kick(ctx context.Context, name string) error
	// Ban refuses the peer for d, or for good when d is 0.
	Ban(ctx context.Context, name string, d time.Duration) error
	// Unban lifts a ban.
	Unban(ctx context.Context, name string) error
	// Bans lists the bans in force.
	Bans() ([]BanEntry, error)
}

// BanEntry is one ban as /bans shows it.
type BanEntry struct {
	Name   string
	ID     eventlog.NodeID
	Until  time.Time // zero: for good
	Reason string
}

// Historian reads chat history (/history).
type Historian interface {
	// History returns the last n chat lines, oldest first.
	History(n int) ([]HistoryLine, error)
}

// HistoryLine is one line of chat history.
type HistoryLine struct {
	Time    time.Time
	Name    string
	Text    string
	Private bool
	// To is, for a private message this node sent, whom it went to.
	To string
}

// Connector dials a peer on request (/connect).
type Connector interface {
	Connect(ctx context.Context, addr string) error
}

// Directory lists every peer the node knows of (/peers), connected or not.
type Directory interface {
	KnownPeers() ([]KnownPeer, error)
}

// KnownPeer is one entry of the peer table as /peers shows it.
type KnownPeer struct {
	Name      string
	ID        eventlog.NodeID
	Addrs     []string
	Connected bool
	LastSeen  time.Time // zero: never
	Banned    bool
	// DialFailures counts the failed dials since the last connection.
	DialFailures int
}

// Completer supplies peer names for tab completion on a terminal.
type Completer interface {
	Names() []string
}

// Reacher is a Node that knows how its peers see it: the address they see
// it at and whether they can dial it, as a line for /l ("" while unknown).
type Reacher interface {
	ReachLine() string
}

// Options configure a REPL.
type Options struct {
	// Terminal selects line editing. The caller decides, typically with
	// isatty on stdin and stdout; when false the REPL reads plain lines.
	Terminal bool
	// Prompt is shown before the line being typed on a terminal; empty
	// means "NAME> " with Name, or "> ". Plain mode shows no prompt.
	Prompt string
	// Name is this node's name; with no Prompt the prompt shows it and
	// follows a /nick.
	Name string
	// HistoryFile keeps the typed lines across runs on a terminal (mode
	// 0600: it holds private messages too). Empty keeps them in memory.
	HistoryFile string
}

// REPL reads commands from its input, drives a Node, and owns the output.
type REPL struct {
	in      io.Reader
	out     io.Writer
	opts    Options
	display *Display
	running atomic.Bool
	prompt  atomic.Pointer[string] // what the terminal shows before the line being typed
}

// New returns a REPL that reads lines from in and writes to out. In
// terminal mode in and out should be the terminal (an *os.File), so that
// the REPL can switch it to raw mode and learn its width.
func New(in io.Reader, out io.Writer, opts Options) *REPL {
	r := &REPL{in: in, out: out, opts: opts, display: newDisplay(out)}
	prompt := opts.Prompt
	switch {
	case prompt != "":
	case opts.Name != "":
		prompt = opts.Name + "> "
	default:
		prompt = "> "
	}
	r.prompt.Store(&prompt)
	return r
}

// renamed makes the prompt follow a /nick when it shows the name.
func (r *REPL) renamed(name string) {
	if r.opts.Prompt == "" && r.opts.Name != "" {
		prompt := name + "> "
		r.prompt.Store(&prompt)
	}
}

// Display returns the REPL's output, for the node to show chat lines,
// private messages and system lines. It may be used before, during and
// after Run.
func (r *REPL) Display() *Display { return r.display }

// Run reads and executes lines until /quit or end of input, which return
// nil, or until ctx ends, which returns ctx.Err(). Input errors are
// returned; errors of single lines or node calls are shown and Run goes on.
// On a terminal, Ctrl-C clears the line being typed, and on an empty line
// it leaves like /quit (the terminal is in raw mode, so it raises no
// signal).
//
// Run reads its input from one goroutine of its own, which ends before Run
// returns, with one exception: when ctx ends while that goroutine is
// blocked in a Read that cannot be interrupted, it ends when the input
// yields data or is closed. Readers with SetReadDeadline (an *os.File on a
// pipe or pty opened by this process) are interrupted; os.Stdin usually is
// not, which is harmless for a process that is about to exit. Tests using
// an io.Pipe close it.
//
// Run may be called once at a time.
func (r *REPL) Run(ctx context.Context, node Node) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("repl: Run is already running")
	}
	defer r.running.Store(false)
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.opts.Terminal {
		return r.runTerminal(ctx, node)
	}
	return r.runPlain(ctx, node)
}

// runPlain reads lines without editing: for scripts, pipes and tests.
func (r *REPL) runPlain(ctx context.Context, node Node) error {
	p := newPump(r.in)
	defer p.Close()
	stop := context.AfterFunc(ctx, func() { p.Close() })
	defer stop()

	br := bufio.NewReader(p)
	for {
		line, tooLong, err := readLine(br)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read input: %w", err)
		}
		if tooLong {
			r.display.ShowSystem(fmt.Sprintf("line is longer than %d bytes; nothing sent", maxLineLen))
			continue
		}
		if r.execute(ctx, node, line) {
			return nil
		}
	}
}

// readLine reads one line without its "\n" or "\r\n". A line longer than
// maxLineLen is consumed whole but reported as tooLong instead of kept.
// A last line without a newline is returned before io.EOF.
func readLine(br *bufio.Reader) (line string, tooLong bool, err error) {
	var buf []byte
	read := 0
	for {
		frag, err := br.ReadSlice('\n')
		read += len(frag)
		if !tooLong {
			if len(buf)+len(frag) > maxLineLen+2 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, frag...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (read == 0 || !errors.Is(err, io.EOF)) {
			return "", false, err
		}
		break
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(buf), "\n"), "\r")
	if !tooLong && len(s) > maxLineLen {
		tooLong, s = true, ""
	}
	return s, tooLong, nil
}

// execute runs one line and reports whether the REPL should stop.
func (r *REPL) execute(ctx context.Context, node Node, line string) (quit bool) {
	cmd, err := Parse(line)
	if err != nil {
		r.display.ShowSystem(err.Error())
		return false
	}
	d := r.display
	notAvailable := func() { d.ShowSystem("/" + cmd.Kind.String() + " is not available") }
	report := func(err error) {
		if err != nil {
			d.ShowSystem("error: " + err.Error())
		}
	}

	switch cmd.Kind {
	case Empty:
	case Quit:
		return true
	case Say, Me:
		report(node.Say(ctx, cmd.Text))
	case Help:
		d.Printf("%s", HelpText())
	case List:
		r.showUsers(node.Users())
		if rn, ok := node.(Reacher); ok {
			if line := rn.ReachLine(); line != "" {
				d.ShowSystem(line)
			}
		}
	case Payload:
		b, err := node.PeersPayload()
		if err != nil {
			report(err)
			break
		}
		if r.opts.Terminal {
			// Up to 64 KiB on one line is unreadable on a screen;
			// scripts get it compact, one line as before.
			var indented bytes.Buffer
			if json.Indent(&indented, b, "", "  ") == nil {
				b = indented.Bytes()
			}
		}
		d.Printf("%s", b)
	case Msg:
		if m, ok := node.(Messenger); ok {
			report(m.Msg(ctx, cmd.Name, cmd.Text))
		} else {
			notAvailable()
		}
	case Nick:
		if m, ok := node.(Renamer); ok {
			err := m.Nick(ctx, cmd.Name)
			report(err)
			if err == nil {
				r.renamed(cmd.Name)
			}
		} else {
			notAvailable()
		}
	case Kick, Ban, Unban, Bans:
		m, ok := node.(Moderator)
		if !ok {
			notAvailable()
			break
		}
		switch cmd.Kind {
		case Kick:
			report(m.Kick(ctx, cmd.Name))
		case Ban:
			report(m.Ban(ctx, cmd.Name, cmd.Duration))
		case Unban:
			report(m.Unban(ctx, cmd.Name))
		case Bans:
			bans, err := m.Bans()
			if err != nil {
				report(err)
				break
			}
			r.showBans(bans)
		}
	case History:
		h, ok := node.(Historian)
		if !ok {
			notAvailable()
			break
		}
		lines, err := h.History(cmd.N)
		if err != nil {
			report(err)
			break
		}
		if len(lines) == 0 {
			d.ShowSystem("no chat history")
		}
		for _, l := range lines {
			d.ShowHistory(l)
		}
	case Connect:
		if c, ok := node.(Connector); ok {
			report(c.Connect(ctx, cmd.Addr))
		} else {
			notAvailable()
		}
	case Peers:
		dir, ok := node.(Directory)
		if !ok {
			notAvailable()
			break
		}
		peers, err := dir.KnownPeers()
		if err != nil {
			report(err)
			break
		}
		r.showPeers(peers)
	default:
		d.ShowSystem("/" + cmd.Kind.String() + " is not available")
	}
	return false
}

// nameWidth is the column width that aligns names, in runes as fmt counts
// them, capped so that one long name does not push every line right.
func nameWidth[T any](items []T, name func(T) string) int {
	w := 0
	for _, it := range items {
		w = max(w, len([]rune(name(it))))
	}
	return min(w, eventlog.MaxNameLen)
}

func (r *REPL) showUsers(users []User) {
	if len(users) == 0 {
		r.display.ShowSystem("no one else is connected")
		return
	}
	users = slices.Clone(users)
	slices.SortFunc(users, func(a, b User) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID[:]), string(b.ID[:]))
	})
	w := nameWidth(users, func(u User) string { return u.Name })
	now := time.Now()
	for _, u := range users {
		r.display.Printf("%-*s  %s  %s  since %s", w, u.Name, u.ID.Short(), u.Addr, Stamp(u.Since, now))
	}
}

func (r *REPL) showBans(bans []BanEntry) {
	if len(bans) == 0 {
		r.display.ShowSystem("no one is banned")
		return
	}
	w := nameWidth(bans, func(b BanEntry) string { return b.Name })
	for _, b := range bans {
		until := "for good"
		if !b.Until.IsZero() {
			until = "until " + b.Until.Local().Format(time.DateTime)
		}
		line := fmt.Sprintf("%-*s  %s  %s", w, b.Name, b.ID.Short(), until)
		if b.Reason != "" {
			line += "  (" + b.Reason + ")"
		}
		r.display.Printf("%s", line)
	}
}

func (r *REPL) showPeers(peers []KnownPeer) {
	if len(peers) == 0 {
		r.display.ShowSystem("no known peers")
		return
	}
	for _, row := range PeerRows(peers, time.Now()) {
		r.display.Printf("%s", row)
	}
}
