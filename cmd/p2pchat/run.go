package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	goio "io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

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
	LogLevel   string   `help:"Log level: debug, info, warn or error (default: info; warn when the chat runs on a terminal)." placeholder:"L"`
	LogFile    string   `help:"Write logs to this file instead of stderr." type:"path" placeholder:"F"`

	NoMDNS bool `name:"no-mdns" help:"Neither advertise this node on the local network nor look for nodes there (multicast DNS)."`

	NetworkKeyFile string `help:"File holding the network key (text, at least 16 bytes, mode 600): only nodes with the same key connect. P2PCHAT_NETWORK_KEY may hold the key itself instead." type:"path" placeholder:"F"`

	WebFlags
}

// Run opens the node in the data directory and serves until the REPL ends
// or a signal arrives.
func (c *RunCmd) Run(ctx context.Context, g *Globals, io stdio) error {
	if err := c.validate(); err != nil {
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
	fronts, err := c.WebFlags.prepare(dir)
	if err != nil {
		return err
	}
	local, err := openNode(dir, g.Uname, c.Port, fronts.onCommit())
	if err != nil {
		return err
	}
	defer local.Close()
	return c.serve(ctx, local, fronts, netKey, io)
}

// validate refuses flag values that are wrong whatever the directory
// holds, before anything is created.
func (c *RunCmd) validate() error {
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
	return checkLogLevel(c.LogLevel)
}

// localNode is a node's state as opened from its data directory: the store
// (holding the directory's lock), the event log, and who the node is.
type localNode struct {
	dir  string
	st   *store.Store
	log  *eventlog.Log
	name string
	port int // 0: any free port
	key  ed25519.PrivateKey
	// note is said once at start: why --uname did not rename the node.
	note string
}

// openNode opens the node in dir, creating it on first start. uname names
// a new node; an existing node keeps its name, which only /nick changes,
// so that a restart with the command typed last time never undoes a
// /nick. port, when not 0, moves the node to that port. onCommit, if not
// nil, hears of every commit of the log (metrics).
func openNode(dir, uname string, port int, onCommit func(events int, took time.Duration)) (*localNode, error) {
	if uname != "" {
		if err := eventlog.CheckName(uname); err != nil {
			return nil, usageError{fmt.Sprintf("--uname: %v", err)}
		}
	} else if _, err := os.Stat(filepath.Join(dir, store.FileName)); errors.Is(err, fs.ErrNotExist) {
		// Refuse before creating anything: a first start needs a name.
		return nil, usageError{fmt.Sprintf("%s holds no node yet: the first start needs --uname NAME", dir)}
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return nil, err
	}
	n := &localNode{dir: dir, st: st, port: port}
	if err := n.load(uname, onCommit); err != nil {
		st.Close()
		return nil, err
	}
	return n, nil
}

func (n *localNode) load(uname string, onCommit func(events int, took time.Duration)) error {
	name, err := n.st.Name()
	if err != nil {
		return err
	}
	switch {
	case name == "" && uname == "":
		return usageError{fmt.Sprintf("%s holds no node yet: the first start needs --uname NAME", n.dir)}
	case name == "":
		name = uname
		if err := n.st.SetName(name); err != nil {
			return err
		}
	case uname != "" && uname != name:
		n.note = fmt.Sprintf("this node is %s; --uname %s names only a new node (rename with /nick)", name, uname)
	}
	n.name = name
	if n.port == 0 {
		if n.port, err = n.st.Port(); err != nil {
			return err
		}
	}
	if n.key, err = n.st.Identity(); err != nil {
		return err
	}
	n.log, err = eventlog.Open(n.st, eventlog.Options{MaxAhead: maxAhead, MaxPerOrigin: maxPerOrigin,
		MaxPeers: peering.DefaultConfig().MaxKnownPeers, OnCommit: onCommit})
	return err
}

// Close closes the log and the store, which releases the directory.
func (n *localNode) Close() error {
	var err error
	if n.log != nil {
		err = n.log.Close()
	}
	return errors.Join(err, n.st.Close())
}

// serve runs an opened node: the console (REPL or headless), logs, the
// control socket for the reading commands, and the network, until the
// REPL ends or ctx does.
func (c *RunCmd) serve(ctx context.Context, local *localNode, fronts *frontEnds, netKey []byte, io stdio) error {
	terminal := isTerminal(io.in) && isTerminal(io.out)
	console := repl.New(io.in, io.out, repl.Options{
		Terminal:    terminal,
		Name:        local.name,
		HistoryFile: filepath.Join(local.dir, "input_history"),
	})
	display := console.Display()
	// On a terminal, logs that would land on the same screen go through
	// the REPL, above the line being typed.
	var logScreen *repl.Display
	if terminal && isTerminal(io.err) {
		logScreen = display
	}
	logger, logCloser, err := newLogger(c.LogLevel, c.LogFile, io.err, logScreen)
	if err != nil {
		return err
	}
	defer logCloser.Close()

	ctl, err := control.Listen(local.dir, func(ctx context.Context, req control.Request, w goio.Writer) error {
		return answer(ctx, local.log, req, w)
	})
	if err != nil {
		// The node works without it; only the reading commands cannot
		// reach it while it runs.
		logger.Warn().Err(err).Msg("no control socket")
	} else {
		defer ctl.Close()
	}

	cfg := peering.DefaultConfig()
	cfg.Name, cfg.Key, cfg.Port, cfg.ListenHost = local.name, local.key, local.port, c.ListenHost
	cfg.Seeds, cfg.MaxPeers, cfg.Logger = c.Peer, c.MaxPeers, logger
	cfg.NetworkKey = netKey
	cfg.LANDiscovery = !c.NoMDNS
	node, err := peering.New(cfg, local.log, fronts.display(display))
	if err != nil {
		return err
	}
	if err := node.Listen(); err != nil {
		return err
	}
	defer node.CloseListener() // Run's own close is the one that counts, once it runs
	if err := local.st.SetPort(node.Port()); err != nil {
		return err
	}

	if err := showHistory(local.log, display, c.Replay); err != nil {
		return err
	}
	if local.note != "" {
		display.ShowSystem(local.note)
	}
	display.ShowSystem(fmt.Sprintf("%s (%s) listening on %s, data in %s", local.name, node.ID().Short(), node.Addr(), local.dir))
	stopFronts, err := fronts.start(ctx, chatNode{Node: node, log: local.log, st: local.st}, local.st, display, logger)
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
	// A failed write stops the log for good: stop the node with it, and
	// let the restart read back what the file holds.
	var logErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-local.log.Stopped():
			logErr = local.log.Err()
			stopNode()
		case <-nodeCtx.Done():
		}
	}()

	var replErr error
	if c.Headless {
		<-nodeCtx.Done()
	} else {
		replErr = console.Run(nodeCtx, chatNode{Node: node, log: local.log, st: local.st})
		if errors.Is(replErr, context.Canceled) {
			replErr = nil
		}
	}
	stopNode()
	wg.Wait()
	return errors.Join(logErr, nodeErr, replErr)
}

// maxAhead is how far past the highest contiguous message of an author a
// received message may be numbered; catch-up fills such gaps in pages far
// smaller than this.
const maxAhead = 100000

// maxPerOrigin is how many lines of one other author a node keeps: ten
// million lines, about 3 GB, a bound no person reaches by typing.
const maxPerOrigin = 10_000_000

// showHistory prints the last n lines of history, as the node starts.
func showHistory(log *eventlog.Log, display *repl.Display, n int) error {
	events, err := log.LastLines(n)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	for _, l := range toHistoryLines(log, events) {
		display.ShowHistory(l)
	}
	return nil
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}
