package peering

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// Log is what the node needs of its event log. It is satisfied by
// *eventlog.Log; the node never touches the database itself.
type Log interface {
	Append(ctx context.Context, bodies ...eventlog.Body) ([]eventlog.Result, error)
	AppendVouched(ctx context.Context, bodies []eventlog.Body, vouchedBy []int) ([]eventlog.Result, error)
	// Sign and AppendSigned sign the node's own messages ahead of the
	// write that stores them.
	Sign(bodies []eventlog.Body) ([]eventlog.Body, error)
	AppendSigned(ctx context.Context, bodies []eventlog.Body) ([]eventlog.Result, error)
	Peers() ([]eventlog.Peer, error)
	Peer(id eventlog.NodeID) (eventlog.Peer, bool, error)
	LookupPeers(ids []eventlog.NodeID) (map[eventlog.NodeID]eventlog.Peer, error)
	KnownOrigins(ids []eventlog.NodeID) ([]bool, error)
	Get(seq uint64) (eventlog.Event, bool, error)
	Holds(msgs []eventlog.Signed) ([]bool, error)
	Vouches(msgs []eventlog.Signed) ([]eventlog.Vouch, error)
	HeldOthers(msgs []eventlog.Signed) ([]eventlog.Signed, error)
	SyncState() ([]eventlog.OriginState, error)
	SyncStateOf(origins []eventlog.NodeID) ([]eventlog.OriginState, error)
	Summaries() ([]eventlog.OriginSummary, error)
	ByOrigin(origin eventlog.NodeID, after uint64, limit int) ([]eventlog.Event, error)
	ByOriginPage(origin eventlog.NodeID, after uint64, limit, maxBytes int) ([]eventlog.Event, bool, error)
	LastSeq() (uint64, error)
	Scan(ctx context.Context, from uint64, fn func(eventlog.Event) error) error
}

// Display is where the node shows what happens to the person at the
// keyboard.
type Display interface {
	ShowChat(t time.Time, name, text string)
	ShowPrivate(t time.Time, name, text string)
	// ShowPrivateTo shows a private message this node sent to to.
	ShowPrivateTo(t time.Time, to, name, text string)
	ShowSystem(text string)
}

// Node is one chat node: it listens, dials, keeps one connection per peer
// and moves chat lines between its log and its peers.
type Node struct {
	cfg     Config
	self    eventlog.NodeID
	log     Log
	display Display
	logger  zerolog.Logger

	serverTLS *tls.Config
	clientTLS *tls.Config
	ln        net.Listener

	mu        sync.Mutex
	name      string
	conns     map[eventlog.NodeID]*conn     // one authenticated connection per peer
	open      int                           // TCP connections in any state
	perIP     map[string]int                // inbound connections per remote IP
	selfAddrs map[string]bool               // addresses that turned out to be this node
	banned    map[eventlog.NodeID]time.Time // until; zero: for good
	present   map[eventlog.NodeID]bool      // shown as joined and not yet as left
	names     knownNames                    // skeletons of the peer table, for labels
	targets   map[string]*target            // what the dialer works on
	dialing   int

	// peersMu makes counting the peer table's rows and appending hearsay
	// to it one step (relay.go's onPeers), so the bound holds.
	peersMu sync.Mutex

	// recordMu orders the CONNECT and DISCONNECT events of connections
	// (conn.go's recordConnect and recordEnd).
	recordMu sync.Mutex

	wake chan struct{} // pokes the dialer
	wg   sync.WaitGroup

	penalties penaltyBox   // node IDs refused for a while (budget.go)
	logLimit  logLimiter   // spaces the log lines about one peer (lograte.go)
	stats     nodeStats    // counters for Stats (stats.go)
	reach     reachability // dial-back results, and how peers see this node (reach.go)
	punches   punchState   // NAT punches under way (punch.go)

	newIDs          *rate.Limiter // node IDs new to the table that may dial in
	catchupAuthors  *rate.Limiter // new authors catch-up may bring, all connections together
	refusedJoins    *rate.Limiter // JOINs recorded of peers not connected
	dialFailRecords *rate.Limiter // DIAL_FAILED events appended
	passOnLimit     *rate.Limiter // PEERS news passed on (gossip.go)

	// syncRoom is the room, in bytes, for peers' SYNC requests held,
	// all connections together (sync.go).
	syncRoom *semaphore.Weighted
	// ingestRoom and catchRoom are the rooms, in bytes, the connections'
	// queues of received lines and of catch-up frames share past their
	// own parts (room.go).
	ingestRoom, catchRoom *semaphore.Weighted

	peersCache struct { // the last PEERS frame sent (peersFrame)
		mu    sync.Mutex
		frame []byte
		made  time.Time
		gen   uint64
	}
	peersGen atomic.Uint64 // raised by peersChanged

	caught *catchupView // what catch-up brought, shown when it is complete

	ownForks ownForks // what was said of this node's forked history (ownfork.go)

	aloneNoted time.Time // when /msg last said that no peer is connected (outbox loop only)

	outbox       chan eventlog.Body // own lines and renames, in order
	outboxMu     sync.RWMutex       // guards sending on outbox against closing it
	outboxClosed bool
	outboxStop   chan struct{} // closed with outbox: what is queued goes unpaced
	outboxDone   chan struct{}
	// caughtUpOnce is closed when the node's first catch-up with a peer
	// ends, or when it has waited long enough (holdOwnLines).
	caughtUpOnce chan struct{}
	firstCatchup sync.Once
	// ownLeftOut is set when an answer to a peer left out the node's own
	// lines while they were held: the peers are told (HAVE) once they go.
	ownLeftOut atomic.Bool
}

// New prepares a node; Listen and Run start it.
func New(cfg Config, log Log, display Display) (*Node, error) {
	cfg.fill()
	if err := eventlog.CheckName(cfg.Name); err != nil {
		return nil, err
	}
	if err := CheckNetworkKey(cfg.NetworkKey); err != nil {
		return nil, err
	}
	self, err := eventlog.IDFromKey(cfg.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	cert, err := NewCertificate(cfg.Key)
	if err != nil {
		return nil, err
	}
	return &Node{
		cfg:        cfg,
		self:       self,
		log:        log,
		display:    display,
		logger:     cfg.Logger,
		serverTLS:  ServerConfig(cert),
		clientTLS:  ClientConfig(cert),
		name:       cfg.Name,
		conns:      map[eventlog.NodeID]*conn{},
		perIP:      map[string]int{},
		selfAddrs:  map[string]bool{},
		banned:     map[eventlog.NodeID]time.Time{},
		present:    map[eventlog.NodeID]bool{},
		targets:    map[string]*target{},
		names:      knownNames{stale: make(chan struct{}, 1)},
		wake:       make(chan struct{}, 1),
		outbox:     make(chan eventlog.Body, outboxSize),
		outboxStop: make(chan struct{}),
		outboxDone: make(chan struct{}),
		caught:     newCatchupView(),

		caughtUpOnce: make(chan struct{}),
		ownForks: ownForks{
			named:   map[uint64]bool{},
			pending: map[eventlog.NodeID][]eventlog.Signed{},
			found:   make(chan struct{}, 1),
		},

		newIDs:          rate.NewLimiter(rate.Limit(cfg.NewPeerRate), cfg.NewPeerBurst),
		catchupAuthors:  nodeCatchupAuthors(&cfg),
		refusedJoins:    rate.NewLimiter(rate.Every(time.Minute/time.Duration(cfg.MaxRefusedJoins)), cfg.MaxRefusedJoins),
		dialFailRecords: rate.NewLimiter(rate.Every(time.Minute/time.Duration(cfg.MaxDialFailRecords)), cfg.MaxDialFailRecords),
		passOnLimit:     rate.NewLimiter(passOnRate, passOnBurst),
		syncRoom:        semaphore.NewWeighted(syncRequestsRoom),
		ingestRoom:      semaphore.NewWeighted(ingestRoomBytes),
		catchRoom:       semaphore.NewWeighted(catchRoomBytes),
	}, nil
}

// ID is this node's ID.
func (n *Node) ID() eventlog.NodeID { return n.self }

// Name is this node's current name.
func (n *Node) Name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.name
}

// Listen binds the listening socket, so the caller learns the port before
// Run.
func (n *Node) Listen() error {
	addr := net.JoinHostPort(n.cfg.ListenHost, strconv.Itoa(n.cfg.Port))
	if n.cfg.Port != 0 {
		// The listener shares its port with NAT punches (SO_REUSEPORT),
		// which would also let a second process bind it unnoticed: a
		// plain bind first fails if anyone holds the port.
		probe, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		probe.Close()
	}
	lc := net.ListenConfig{Control: reusePort}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	n.ln = ln
	return nil
}

// CloseListener closes the listener Listen opened, for a caller that
// stops before Run, which otherwise closes it when it ends; closing it
// twice does no harm.
func (n *Node) CloseListener() {
	if n.ln != nil {
		n.ln.Close()
	}
}

// Addr is the listening address (after Listen).
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// Port is the listening port (after Listen).
func (n *Node) Port() int { return n.ln.Addr().(*net.TCPAddr).Port }

// Run serves until ctx ends, then says goodbye to every peer and returns
// once every goroutine it started has stopped.
func (n *Node) Run(ctx context.Context) error {
	if n.ln == nil {
		if err := n.Listen(); err != nil {
			return err
		}
	}
	if err := n.loadTargets(); err != nil {
		n.ln.Close()
		return err
	}
	stopWaiting := n.awaitFirstCatchup()
	defer stopWaiting()
	upTo, err := n.log.LastSeq()
	if err != nil {
		n.ln.Close()
		return err
	}
	// Connections outlive ctx by a moment: lines typed before the end are
	// stored and sent before the goodbyes.
	connCtx, closeConns := context.WithCancel(context.WithoutCancel(ctx))
	defer closeConns()
	n.wg.Add(4)
	go n.acceptLoop(connCtx)
	go n.dialLoop(connCtx)
	go n.outboxLoop(connCtx)
	go n.namesLoop(connCtx)
	n.wg.Add(1)
	go n.ackMissed(connCtx, upTo)
	n.wg.Add(1)
	go n.forkNotesLoop(connCtx)
	if n.cfg.LANDiscovery {
		n.wg.Add(1)
		go n.discoverLAN(ctx)
	}
	n.logger.Info().Str("id", n.self.Short()).Str("addr", n.ln.Addr().String()).Msg("listening")
	<-ctx.Done()
	n.ln.Close()
	n.closeOutbox()
	closeConns()
	n.wg.Wait()
	return nil
}

func (n *Node) acceptLoop(ctx context.Context) {
	defer n.wg.Done()
	for {
		raw, err := n.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.logger.Warn().Err(err).Msg("accept")
			// Out of file descriptors and the like: give the system a
			// moment instead of spinning.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		ip := remoteIP(raw)
		if reason := n.admit(ip); reason != "" {
			n.logger.Debug().Str("remote", raw.RemoteAddr().String()).Str("reason", reason).Msg("refused connection")
			raw.Close()
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer n.release(ip)
			n.serve(ctx, raw, nil)
		}()
	}
}

// admit counts an inbound connection against the caps, or says why not.
func (n *Node) admit(ip string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.open >= n.cfg.MaxConns {
		return "connection limit reached"
	}
	if n.perIP[ip] >= n.cfg.MaxConnsPerIP {
		return "per-address connection limit reached"
	}
	n.open++
	n.perIP[ip]++
	return ""
}

func (n *Node) release(ip string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.open--
	if ip == "" {
		return // outbound: counted in open only
	}
	if n.perIP[ip]--; n.perIP[ip] <= 0 {
		delete(n.perIP, ip)
	}
}

func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// serve runs one connection from handshake to close. t is the dial target
// for an outbound connection, nil for an inbound one.
func (n *Node) serve(ctx context.Context, raw net.Conn, t *target) {
	defer raw.Close()
	c, err := n.handshake(ctx, raw, t)
	if err != nil {
		if t != nil {
			n.dialDone(t, nil, err)
		}
		if !errors.Is(err, errSelf) && ctx.Err() == nil {
			n.limitedLog("handshake "+remoteIP(raw), zerolog.InfoLevel).Err(err).Str("remote", raw.RemoteAddr().String()).Bool("inbound", t == nil).Msg("handshake failed")
		}
		return
	}
	n.runConn(ctx, c, t)
}

// broadcast queues frame to every connected peer but except and returns
// to how many.
func (n *Node) broadcast(frame []byte, except *conn) int {
	return n.broadcastTo(frame, except, 1)
}

// broadcastSigned sends a signed message, in its canonical encoding, to
// every peer that can read it (wire.MinVersion) but except, and returns to
// how many. It encodes the message only if some peer gets it: a node's
// only peer is often the one a line came from.
func (n *Node) broadcastSigned(body eventlog.Body, except *conn) (int, error) {
	peers := n.peersReading(except, wire.MinVersion(body))
	if len(peers) == 0 {
		return 0, nil
	}
	frame, err := wire.SignedFrame(body, n.cfg.MaxFrame)
	if err != nil {
		return 0, err
	}
	return sendEach(peers, frame), nil
}

func (n *Node) broadcastTo(frame []byte, except *conn, minVersion int) int {
	return sendEach(n.peersReading(except, minVersion), frame)
}

// sendEach queues frame to each of peers and returns how many they are.
func sendEach(peers []*conn, frame []byte) int {
	for _, c := range peers {
		c.send(frame)
	}
	return len(peers)
}

// peersReading lists the connected peers but except whose protocol
// version is at least minVersion.
func (n *Node) peersReading(except *conn, minVersion int) []*conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	peers := make([]*conn, 0, len(n.conns))
	for _, c := range n.conns {
		if c != except && c.version >= minVersion {
			peers = append(peers, c)
		}
	}
	return peers
}

// User is a connected peer as the REPL lists it.
type User struct {
	ID    eventlog.NodeID
	Name  string
	Addr  string
	Since time.Time
}

// Users lists the connected peers, never this node itself, by name.
func (n *Node) Users() []User {
	n.mu.Lock()
	out := make([]User, 0, len(n.conns))
	for _, c := range n.conns {
		if c.listed {
			out = append(out, User{ID: c.id, Name: c.name, Addr: c.listenAddr(), Since: c.since})
		}
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b User) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.ID.Less(b.ID) {
			return -1
		}
		return 1
	})
	return out
}

// PeersPayload is the PEERS frame's JSON as this node would send it now.
func (n *Node) PeersPayload() ([]byte, error) {
	msg, err := n.peersMsg()
	if err != nil {
		return nil, err
	}
	return json.Marshal(msg)
}

// peersFrame is the PEERS frame to send. A thousand entries with eight
// addresses each do not fit in a frame, so the list is cut (connected
// peers come first and stay) until it does. Every new connection gets
// one, and reading the table for it costs work a stranger's handshake
// would otherwise buy at will: the frame is shared for up to
// peersFrameAge, and made anew once what it lists changed (peersChanged).
func (n *Node) peersFrame() ([]byte, error) {
	n.peersCache.mu.Lock()
	defer n.peersCache.mu.Unlock()
	gen := n.peersGen.Load()
	if n.peersCache.frame != nil && n.peersCache.gen == gen && time.Since(n.peersCache.made) < peersFrameAge {
		return n.peersCache.frame, nil
	}
	msg, err := n.peersMsg()
	if err != nil {
		return nil, err
	}
	for {
		frame, err := wire.EncodeFrame(wire.FramePeers, msg, n.cfg.MaxFrame)
		if !errors.Is(err, wire.ErrFrameTooLarge) || len(msg.Peers) == 0 {
			if err == nil {
				n.peersCache.frame, n.peersCache.made, n.peersCache.gen = frame, time.Now(), gen
			}
			return frame, err
		}
		msg.Peers = msg.Peers[:len(msg.Peers)*3/4]
	}
}

// peersChanged notes that the PEERS frame to send may differ now: a peer
// connected or left, the table learned a peer, a ban changed. Call it
// after the change, without n.mu.
func (n *Node) peersChanged() { n.peersGen.Add(1) }

// peersFrameAge is how long a PEERS frame made for one connection serves
// the next ones.
const peersFrameAge = time.Second

// peersMsg lists what this node knows that others could dial: connected
// peers first, then the rest of the table, never banned ones, at most the
// protocol's limit.
func (n *Node) peersMsg() (wire.PeersMsg, error) {
	table, err := n.log.Peers()
	if err != nil {
		return wire.PeersMsg{}, err
	}
	n.mu.Lock()
	connected := make(map[eventlog.NodeID]bool, len(n.conns))
	for id := range n.conns {
		connected[id] = true
	}
	n.mu.Unlock()
	now := time.Now()
	msg := wire.PeersMsg{Peers: []wire.PeerEntry{}}
	for _, pass := range []bool{true, false} {
		for _, p := range table {
			if connected[p.ID] != pass || len(p.Addrs) == 0 || p.BannedAt(now) || n.stale(p, now) || len(msg.Peers) == maxPeersEntries {
				continue
			}
			if _, penalized := n.penalties.active(p.ID, now); penalized {
				continue
			}
			// A peer whose addresses cannot be dialed is still named,
			// so that others can address private messages to it.
			msg.Peers = append(msg.Peers, wire.PeerEntry{ID: p.ID, Name: p.Name, Addrs: n.reach.visible(p.Addrs)})
		}
	}
	return msg, nil
}

// joinMsg is how this node introduces itself.
func (n *Node) joinMsg() wire.JoinMsg {
	msg := wire.JoinMsg{Version: wire.ProtocolVersion, ID: n.self, Name: n.Name(), Port: n.Port()}
	if ip := net.ParseIP(n.cfg.ListenHost); ip != nil && !ip.IsUnspecified() {
		msg.Addrs = []string{net.JoinHostPort(n.cfg.ListenHost, strconv.Itoa(n.Port()))}
	}
	return msg
}

// full reports whether this node has no room for another peer.
func (n *Node) full() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns) >= n.cfg.MaxPeers
}

func (n *Node) isBanned(id eventlog.NodeID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bannedLocked(id)
}

func (n *Node) bannedLocked(id eventlog.NodeID) bool {
	until, ok := n.banned[id]
	if ok && !until.IsZero() && time.Now().After(until) {
		delete(n.banned, id)
		return false
	}
	return ok
}

// setPresent records whether the peer is shown as present and reports
// whether that changed, so joins and leaves are shown once each however
// connections come and go underneath.
func (n *Node) setPresent(id eventlog.NodeID, present bool) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.present[id] == present {
		return false
	}
	if present {
		n.present[id] = true
	} else {
		delete(n.present, id)
	}
	return true
}
