package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/repl"
	"github.com/rs/zerolog"
)

// CLI is the whole command line. Every flag can also be set through
// P2PCHAT_<FLAG> (P2PCHAT_DATA_DIR, P2PCHAT_PORT, ...).
type CLI struct {
	Globals
	VersionFlag kong.VersionFlag `name:"version" env:"-" help:"Print the version and exit."`

	Run     RunCmd     `cmd:"" default:"withargs" help:"Run a chat node (the default command)."`
	History HistoryCmd `cmd:"" help:"Print the chat history."`
	Peers   PeersCmd   `cmd:"" help:"Print the peer table."`
	Events  EventsCmd  `cmd:"" help:"Print the event log."`
	Verify  VerifyCmd  `cmd:"" help:"Rebuild the projection from the whole log and compare it with the stored one."`
	Version VersionCmd `cmd:"" help:"Print the version."`
}

// Globals are the flags every command takes: which node.
type Globals struct {
	DataDir string `help:"Data directory of the node (default: $XDG_DATA_HOME/p2pchat/<uname>, or ~/.local/share/p2pchat/<uname>)." type:"path" placeholder:"DIR"`
	Uname   string `help:"Names a new node, and picks the default data directory. Needed on first start; it does not rename an existing node (/nick does)." placeholder:"NAME"`
}

// dataDir is where the node lives: --data-dir, or the default directory
// named after --uname.
func (g *Globals) dataDir() (string, error) {
	if g.DataDir != "" {
		return g.DataDir, nil
	}
	if g.Uname == "" {
		return "", usageError{"no node given: pass --uname NAME (default data directory) or --data-dir DIR"}
	}
	if err := eventlog.CheckName(g.Uname); err != nil {
		return "", usageError{fmt.Sprintf("--uname: %v", err)}
	}
	if strings.ContainsAny(g.Uname, `/\`) || g.Uname == "." || g.Uname == ".." {
		return "", usageError{fmt.Sprintf("--uname %q cannot name a directory; pass --data-dir DIR", g.Uname)}
	}
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no default data directory (%v): pass --data-dir DIR", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "p2pchat", g.Uname), nil
}

// newLogger builds the zerolog logger: to --log-file as JSON, or to stderr,
// human-readable when stderr is a terminal and JSON otherwise. With screen
// set (the REPL owns the terminal) readable lines go through it, so they
// never garble the line being typed; there the default level is warn, to
// keep the chat readable. The returned closer closes the log file, if any.
func newLogger(levelName, file string, stderr io.Writer, screen *repl.Display) (zerolog.Logger, io.Closer, error) {
	if err := checkLogLevel(levelName); err != nil {
		return zerolog.Nop(), nil, err
	}
	if levelName == "" {
		levelName = "info"
		if screen != nil && file == "" {
			levelName = "warn"
		}
	}
	level, _ := zerolog.ParseLevel(levelName)
	var w io.Writer = stderr
	var closer io.Closer = io.NopCloser(nil)
	switch {
	case file != "":
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return zerolog.Nop(), nil, fmt.Errorf("open log file: %w", err)
		}
		w, closer = f, f
	case screen != nil:
		w = zerolog.ConsoleWriter{Out: screenWriter{screen}, NoColor: true, TimeFormat: time.TimeOnly}
	case isTerminal(stderr):
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), closer, nil
}

// checkLogLevel refuses a --log-level that is not one of the four.
func checkLogLevel(level string) error {
	switch level {
	case "", "debug", "info", "warn", "error":
		return nil
	}
	return usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
}

// screenWriter shows log lines through the REPL's display.
type screenWriter struct{ d *repl.Display }

func (w screenWriter) Write(p []byte) (int, error) {
	w.d.Printf("%s", p)
	return len(p), nil
}
