package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// HistoryCmd prints chat lines.
type HistoryCmd struct {
	N    int  `short:"n" help:"Only the last N lines (default: all)." placeholder:"N"`
	JSON bool `name:"json" help:"JSON Lines output, one CHAT event per line."`
}

// Run prints the history, oldest first.
func (c *HistoryCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	if c.N < 0 {
		return usageError{"-n: want 0 or more"}
	}
	st, log, err := g.openReadOnly()
	if err != nil {
		return err
	}
	defer st.Close()
	out := newLineWriter(io)
	defer out.Flush()
	print := func(e eventlog.Event) error {
		if c.JSON {
			return out.json(e)
		}
		chat := e.Body.(eventlog.Chat)
		return out.line(fmt.Sprintf("%s <%s> %s", chat.OriginTime.Local().Format(time.DateTime), chat.Name, chat.Text))
	}
	if c.N > 0 {
		lines, err := log.LastChats(c.N)
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
	return log.Scan(ctx, 1, func(e eventlog.Event) error {
		if e.Body.Type() != eventlog.TypeChat {
			return nil
		}
		return print(e)
	})
}

// PeersCmd prints the peer table.
type PeersCmd struct {
	JSON bool `name:"json" help:"JSON Lines output, one peer per line."`
}

// Run prints every known peer.
func (c *PeersCmd) Run(g *Globals, io stdio) error {
	st, log, err := g.openReadOnly()
	if err != nil {
		return err
	}
	defer st.Close()
	peers, err := log.Peers()
	if err != nil {
		return err
	}
	out := newLineWriter(io)
	defer out.Flush()
	now := time.Now()
	for _, p := range peers {
		if c.JSON {
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

// EventsCmd prints the event log.
type EventsCmd struct {
	Since uint64 `help:"Start at this sequence number." default:"1" placeholder:"SEQ"`
	JSON  bool   `name:"json" help:"JSON Lines output, one event per line with a type field."`
}

// Run prints the events from --since on.
func (c *EventsCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	st, log, err := g.openReadOnly()
	if err != nil {
		return err
	}
	defer st.Close()
	out := newLineWriter(io)
	defer out.Flush()
	return log.Scan(ctx, c.Since, func(e eventlog.Event) error {
		if c.JSON {
			return out.json(e)
		}
		return out.line(e.String())
	})
}

// VerifyCmd checks the log against its projection.
type VerifyCmd struct{}

// Run prints "ok: N events, M peers", or the differences and fails.
func (c *VerifyCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	st, log, err := g.openReadOnly()
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := log.Verify(ctx)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		for _, p := range rep.Problems {
			fmt.Fprintln(io.out, p)
		}
		return fmt.Errorf("verify %s: %d differences between the log and its projection", st.Path(), len(rep.Problems))
	}
	fmt.Fprintf(io.out, "ok: %d events, %d peers\n", rep.Events, rep.Peers)
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
	fmt.Fprintf(io.out, "p2pchat %s%s (protocol 1, schema %d)\n", version, revision, store.SchemaVersion)
	return nil
}

// lineWriter buffers command output; the reading commands can print a
// million lines.
type lineWriter struct{ *bufio.Writer }

func newLineWriter(io stdio) lineWriter { return lineWriter{bufio.NewWriter(io.out)} }

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
