package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/control"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/repl"
	"github.com/p2pchat/p2pchat/store"
)

// HistoryCmd prints chat lines and this node's private messages.
type HistoryCmd struct {
	N    int  `short:"n" help:"Only the last N lines (default: all)." placeholder:"N"`
	JSON bool `name:"json" help:"JSON Lines output, one CHAT event (or private message, SEALED with its text) per line."`
}

// Run prints the history, oldest first.
func (c *HistoryCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	if c.N < 0 {
		return usageError{"-n: want 0 or more"}
	}
	return g.read(ctx, io, control.Request{Command: "history", N: c.N, JSON: c.JSON})
}

// PeersCmd prints the peer table.
type PeersCmd struct {
	JSON bool `name:"json" help:"JSON Lines output, one peer per line."`
}

// Run prints every known peer.
func (c *PeersCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	return g.read(ctx, io, control.Request{Command: "peers", JSON: c.JSON})
}

// EventsCmd prints the event log.
type EventsCmd struct {
	Since uint64 `help:"Start at this sequence number." default:"1" placeholder:"SEQ"`
	JSON  bool   `name:"json" help:"JSON Lines output, one event per line with a type field."`
}

// Run prints the events from --since on.
func (c *EventsCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	return g.read(ctx, io, control.Request{Command: "events", Since: c.Since, JSON: c.JSON})
}

// VerifyCmd checks the log against its projection.
type VerifyCmd struct{}

// Run prints "ok: N events, M peers", or the differences and fails.
func (c *VerifyCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	return g.read(ctx, io, control.Request{Command: "verify"})
}

// read answers a reading command from the data directory, or, while a
// node runs there and holds the lock, from that node over its control
// socket. Either way it never waits for long.
func (g *Globals) read(ctx context.Context, io stdio, req control.Request) error {
	dir, err := g.dataDir()
	if err != nil {
		return err
	}
	st, err := store.Open(dir, store.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, store.ErrDirInUse) {
		askCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		askErr := control.Ask(askCtx, dir, req, io.out)
		if errors.Is(askErr, control.ErrNoServer) {
			return fmt.Errorf("%w, and it does not answer on its control socket", err)
		}
		return askErr
	}
	if err != nil {
		return err
	}
	defer st.Close()
	log, err := eventlog.Open(st, eventlog.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	return answer(ctx, log, req, io.out)
}

// answer runs a reading command against an open log; a running node calls
// it for requests on its control socket.
func answer(ctx context.Context, log *eventlog.Log, req control.Request, w io.Writer) error {
	out := lineWriter{bufio.NewWriter(w)}
	defer out.Flush()
	switch req.Command {
	case "history":
		return answerHistory(ctx, log, req, out)
	case "peers":
		return answerPeers(log, req, out)
	case "events":
		return log.Scan(ctx, max(req.Since, 1), func(e eventlog.Event) error {
			if req.JSON {
				return out.json(e)
			}
			return out.line(e.String())
		})
	case "verify":
		rep, err := log.Verify(ctx)
		if err != nil {
			return err
		}
		for _, p := range rep.Problems {
			if err := out.line(p); err != nil {
				return err
			}
		}
		if len(rep.Problems) > 0 {
			return fmt.Errorf("verify: %d differences between the log and its projection", len(rep.Problems))
		}
		return out.line(fmt.Sprintf("ok: %d events, %d peers", rep.Events, rep.Peers))
	}
	return fmt.Errorf("unknown request %q", req.Command)
}

func answerHistory(ctx context.Context, log *eventlog.Log, req control.Request, out lineWriter) error {
	print := func(e eventlog.Event) error {
		l, ok := toHistoryLine(log, e)
		if !ok {
			return nil
		}
		if req.JSON {
			if s, ok := e.Body.(eventlog.Sealed); ok {
				return out.json(privateJSON{Seq: e.Seq, Time: e.Time, Type: s.Type().String(), Origin: s.Origin, Name: s.Name, To: s.To, Text: l.Text})
			}
			return out.json(e)
		}
		// Always with the date: the output is often kept in a file.
		return out.line(repl.HistoryText(l.Time.Local().Format(time.DateTime), l))
	}
	if req.N > 0 {
		lines, err := log.LastLines(req.N)
		if err != nil {
			return err
		}
		for _, e := range lines {
			if err := print(e); err != nil {
				return err
			}
		}
		return nil
	}
	return log.Scan(ctx, 1, print)
}

func answerPeers(log *eventlog.Log, req control.Request, out lineWriter) error {
	peers, err := log.Peers()
	if err != nil {
		return err
	}
	if req.JSON {
		for _, p := range peers {
			if err := out.json(p); err != nil {
				return err
			}
		}
		return nil
	}
	now := time.Now()
	rows := make([]repl.KnownPeer, len(peers))
	for i, p := range peers {
		rows[i] = knownPeer(p, false, now)
	}
	for _, row := range repl.PeerRows(rows, now) {
		if err := out.line(row); err != nil {
			return err
		}
	}
	return nil
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the module version and the VCS revision it was built from.
func (c *VersionCmd) Run(io stdio) error {
	fmt.Fprintln(io.out, versionLine())
	return nil
}

// versionLine is what `p2pchat version` and `p2pchat --version` print.
func versionLine() string {
	version, revision := "(devel)", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				revision = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("p2pchat %s%s (protocol %d, schema %d)", version, revision, wire.ProtocolVersion, eventlog.SchemaVersion)
}

// lineWriter buffers command output; the reading commands can print a
// million lines. Names and text in it come from peers, so every line
// passes through the REPL's sanitizer, and JSON escapes what the terminal
// must not see as is.
type lineWriter struct{ *bufio.Writer }

func (w lineWriter) line(s string) error {
	_, err := w.WriteString(repl.Sanitize(s) + "\n")
	return err
}

func (w lineWriter) json(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.WriteString(escapeJSON(string(b)) + "\n")
	return err
}

// escapeJSON writes the characters Sanitize would replace as \uXXXX
// escapes: the same text for a JSON reader, harmless on a terminal.
// encoding/json already escapes C0 controls; C1 controls, bidi controls
// and zero-width characters it leaves raw.
func escapeJSON(s string) string {
	if repl.Sanitize(s) == s {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if string(r) != repl.Sanitize(string(r)) {
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
			} else {
				fmt.Fprintf(&b, "\\u%04x", r)
			}
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
