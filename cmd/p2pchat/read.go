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

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/control"
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
		at := l.Time.Local().Format(time.DateTime)
		switch {
		case l.Private && l.To != "":
			return out.line(fmt.Sprintf("%s [private to %s] <%s> %s", at, l.To, l.Name, l.Text))
		case l.Private:
			return out.line(fmt.Sprintf("%s [private] <%s> %s", at, l.Name, l.Text))
		}
		return out.line(fmt.Sprintf("%s <%s> %s", at, l.Name, l.Text))
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
	now := time.Now()
	for _, p := range peers {
		if req.JSON {
			if err := out.json(p); err != nil {
				return err
			}
			continue
		}
		state := ""
		if p.BannedAt(now) {
			state = " banned"
		}
		line := fmt.Sprintf("%-16s %s  %-21s last seen %s  dial failures %d%s",
			p.Name, p.ID.Short(), strings.Join(p.Addrs, ","), p.LastSeen.Local().Format(time.DateTime), p.DialFailures, state)
		if err := out.line(line); err != nil {
			return err
		}
	}
	return nil
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the module version and the VCS revision it was built from.
func (c *VersionCmd) Run(io stdio) error {
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
	fmt.Fprintf(io.out, "p2pchat %s%s (protocol 1, schema %d)\n", version, revision, eventlog.SchemaVersion)
	return nil
}

// lineWriter buffers command output; the reading commands can print a
// million lines.
type lineWriter struct{ *bufio.Writer }

func (w lineWriter) line(s string) error {
	_, err := w.WriteString(s + "\n")
	return err
}

func (w lineWriter) json(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.line(string(b))
}
