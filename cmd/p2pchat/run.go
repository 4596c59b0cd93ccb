package main

import (
	"context"
	"errors"
	"fmt"
	goio "io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/mattn/go-isatty"
	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/control"
	"github.com/p2pchat/p2pchat/peering"
	"github.com/p2pchat/p2pchat/repl"
	"github.com/p2pchat/p2pchat/store"
)

// RunCmd runs a node: the REPL on stdin/stdout (or headless), the network,
// the log.
type RunCmd struct {
	Port       int      `help:"TCP port to listen on. Remembered: later starts reuse it. On first start without it, any free port." placeholder:"P"`
	Peer       []string `help:"Address of a node to join through; repeatable. Known peers are redialed without it." placeholder:"HOST:PORT"`
	ListenHost string   `help:"Interface to listen on (default: all)." placeholder:"H"`
	Headless   bool     `help:"Run without the REPL until SIGINT or SIGTERM."`
	Replay     int      `help:"Chat lines of history to show at start." default:"20" placeholder:"N"`
	MaxPeers   int      `help:"Most peers connected at once, inbound and outbound together." default:"32" placeholder:"N"`

	NetworkKeyFile string `help:"File holding the network key (text, at least 16 bytes, mode 600): only nodes with the same key connect. P2PCHAT_NETWORK_KEY may hold the key itself instead." type:"path" placeholder:"F"`

	WebFlags
}

// Run opens the data directory and serves until the REPL ends or a signal
// arrives.
func (c *RunCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	if c.Port < 0 || c.Port > 65535 {
		return usageError{fmt.Sprintf("--port %d: want 0 to 65535", c.Port)}
	}
	if c.Replay < 0 {
		return usageError{"--replay: want 0 or more"}
	}
	if c.MaxPeers < 1 {
		return usageError{"--max-peers: want 1 or more"}
	}
	for _, p := range c.Peer {
		if err := peering.CheckAddr(p); err != nil {
			return usageError{fmt.Sprintf("--peer %s: %v", p, err)}
		}
	}
	if err := g.checkLogLevel(); err != nil {
		return err
	}
	netKey, err := loadNetworkKey(c.NetworkKeyFile, os.Getenv)
	if err != nil {
		return err
	}
	dir, err := g.dataDir()
	if err != nil {
		return err
	}
	if g.Uname != "" {
		if err := eventlog.CheckName(g.Uname); err != nil {
			return usageError{fmt.Sprintf("--uname: %v", err)}
		}
	}
	if g.Uname == "" {
		// Refuse before creating anything: a first start needs a name.
		if _, err := os.Stat(filepath.Join(dir, store.FileName)); errors.Is(err, fs.ErrNotExist) {
			return usageError{fmt.Sprintf("%s holds no node yet: the first start needs --uname NAME", dir)}
		}
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	name, err := st.Name()
	if err != nil {
		return err
	}
	if name == "" && g.Uname == "" {
		return usageError{fmt.Sprintf("%s holds no node yet: the first start needs --uname NAME", dir)}
	}
	port := c.Port
	if port == 0 {
		if port, err = st.Port(); err != nil {
			return err
		}
	}
	key, err := st.Identity()
	if err != nil {
		return err
	}
	fronts, err := c.WebFlags.prepare(dir)
	if err != nil {
		return err
	}
	log, err := eventlog.Open(st, eventlog.Options{MaxAhead: maxAhead, MaxPerOrigin: maxPerOrigin, OnCommit: fronts.onCommit()})
	if err != nil {
		return err
	}
	defer log.Close()

	// A --uname other than the stored name renames the node, on the
	// network too; on first start it just names it.
	renamed := name != "" && g.Uname != "" && g.Uname != name
	if g.Uname != "" {
		name = g.Uname
	}
	terminal := isTerminal(io.in) && isTerminal(io.out)
	console := repl.New(io.in, io.out, repl.Options{
		Terminal:    terminal,
		Prompt:      name + "> ",
		HistoryFile: filepath.Join(dir, "input_history"),
	})
	display := console.Display()
	// On a terminal, logs that would land on the same screen go through
	// the REPL, above the line being typed.
	var logScreen *repl.Display
	if terminal && isTerminal(io.err) {
		logScreen = display
	}
	logger, logCloser, err := g.logger(io.err, logScreen)
	if err != nil {
		return err
	}
	defer logCloser.Close()

	ctl, err := control.Listen(dir, func(ctx context.Context, req control.Request, w goio.Writer) error {
		return answer(ctx, log, req, w)
	})
	if err != nil {
		// The node works without it; only the reading commands cannot
		// reach it while it runs.
		logger.Warn().Err(err).Msg("no control socket")
	} else {
		defer ctl.Close()
	}

	cfg := peering.DefaultConfig()
	cfg.Name, cfg.Key, cfg.Port, cfg.ListenHost = name, key, port, c.ListenHost
	cfg.Seeds, cfg.MaxPeers, cfg.Logger = c.Peer, c.MaxPeers, logger
	cfg.NetworkKey = netKey
	node, err := peering.New(cfg, log, fronts.display(display))
	if err != nil {
		return err
	}
	if err := node.Listen(); err != nil {
		return err
	}
	if err := st.SetPort(node.Port()); err != nil {
		return err
	}
	if err := st.SetName(name); err != nil {
		return err
	}
	if renamed {
		if err := node.Nick(ctx, name); err != nil {
			return err
		}
	}

	if err := showHistory(log, display, c.Replay); err != nil {
		return err
	}
	display.ShowSystem(fmt.Sprintf("%s (%s) listening on %s, data in %s", name, node.ID().Short(), node.Addr(), dir))
	stopFronts, err := fronts.start(ctx, chatNode{Node: node, log: log, st: st}, st, display, logger)
	if err != nil {
		return err
	}
	defer stopFronts()

	nodeCtx, stopNode := context.WithCancel(ctx)
	defer stopNode()
	var wg sync.WaitGroup
	var nodeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		nodeErr = node.Run(nodeCtx)
		stopNode()
	}()

	var replErr error
	if c.Headless {
		<-nodeCtx.Done()
	} else {
		replErr = console.Run(nodeCtx, chatNode{Node: node, log: log, st: st})
		if errors.Is(replErr, context.Canceled) {
			replErr = nil
		}
	}
	stopNode()
	wg.Wait()
	return errors.Join(nodeErr, replErr)
}

// maxAhead is how far past the highest contiguous message of an author a
// received message may be numbered; catch-up fills such gaps in pages far
// smaller than this.
const maxAhead = 100000

// maxPerOrigin is how many lines of one other author a node keeps: ten
// million lines, about 3 GB, a bound no person reaches by typing.
const maxPerOrigin = 10_000_000

// showHistory prints the last n chat lines, as the node starts.
func showHistory(log *eventlog.Log, display *repl.Display, n int) error {
	lines, err := log.LastChats(n)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	for _, e := range lines {
		chat := e.Body.(eventlog.Chat)
		display.ShowChat(chat.OriginTime, chat.Name, chat.Text)
	}
	return nil
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}
