package peering

import (
	"crypto/ed25519"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/rs/zerolog"
)

// Config is everything a Node needs besides its log and display. Every
// limit of the protocol is a field, so tests can shrink timeouts instead
// of waiting them out.
type Config struct {
	// Name is the label this node introduces itself with.
	Name string
	// Key is the node's identity; its public half is the node ID.
	Key ed25519.PrivateKey
	// ListenHost is the interface to listen on; "" means all.
	ListenHost string
	// Port is the TCP port to listen on; 0 picks a free one.
	Port int
	// Seeds are addresses to dial at start (--peer), whose IDs are not
	// known yet.
	Seeds []string
	// LANDiscovery advertises the node on the local network and dials
	// the nodes found there (multicast DNS, package lan).
	LANDiscovery bool

	// MaxFrame is the largest frame read or written, in bytes.
	MaxFrame int
	// MaxPeers caps the connected peers, inbound and outbound together.
	MaxPeers int
	// MaxOutbound caps the peers this node dials on its own (a --peer or
	// /connect address still is dialed), so that every node keeps room
	// for peers that dial it. Were every node to dial up to MaxPeers, the
	// first MaxPeers+1 nodes would fill each other up and refuse every
	// newcomer; below half of MaxPeers, some node always has room. 0
	// means (MaxPeers-1)/2, at least 1.
	MaxOutbound int
	// MaxConns caps the TCP connections of any state, handshakes included.
	MaxConns int
	// MaxConnsPerIP caps concurrent inbound connections from one IP
	// address. It never penalises: honest peers can share an address.
	MaxConnsPerIP int
	// SendQueue is the number of frames queued per peer before the peer
	// counts as too slow and is disconnected.
	SendQueue int
	// SendQueueBytes bounds the bytes of the frames queued per peer, past
	// which the peer counts as too slow and is disconnected, so that a
	// peer that does not read costs this much memory at most.
	SendQueueBytes int
	// IngestQueueBytes bounds the bytes of received messages waiting for
	// the log per connection; past it the read loop waits and TCP slows
	// the peer.
	IngestQueueBytes int
	// MaxParallelDials bounds the dials in flight.
	MaxParallelDials int

	// HandshakeTimeout bounds TCP dial, TLS handshake and the JOIN
	// exchange.
	HandshakeTimeout time.Duration
	// PingInterval is how often an idle connection is probed.
	PingInterval time.Duration
	// IdleTimeout is how long a connection may stay silent before it is
	// considered dead.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a peer.
	WriteTimeout time.Duration
	// MaxKnownPeers bounds the peer table's growth from hearsay and the
	// dialer's targets: past it, a new name from PEERS takes the place of
	// hearsay heard of longest ago that never connected (the event log
	// must be opened with the same bound, eventlog.Options.MaxPeers).
	MaxKnownPeers int
	// StaleAfter is how long a peer may stay unreachable before it is
	// neither dialed nor passed on in PEERS.
	StaleAfter time.Duration
	// SyncInterval is how often peers compare what they hold, to fill
	// holes that live relay left.
	SyncInterval time.Duration
	// SyncTimeout is how long this node waits for the next part of a
	// peer's answer to its SYNC before it gives up on that answer: shows
	// what came, counts further CATCHUP against the chat budget, and asks
	// again at its next interval.
	SyncTimeout time.Duration
	// FirstCatchupWait is how long, at start, the node's own lines wait
	// for a catch-up with a peer that holds them to end (outbox.go,
	// holdOwnLines; catchup.speaksForSelf).
	FirstCatchupWait time.Duration
	// Backoff is the redial schedule after failures and drops.
	Backoff Backoff

	// NetworkKey, when set, makes the network private: a peer must prove
	// it holds the same key before anything else is exchanged (see
	// netkey.go). Nil leaves the network open.
	NetworkKey []byte
	// ChatRate is the live CHAT, NICK and PRIVATE frames per second a
	// peer may send on one connection; catch-up this node asked for is
	// free.
	ChatRate int
	// ChatBurst is how many such frames may arrive at once before the
	// rate applies.
	ChatBurst int
	// ByteRate is the bytes per second of frames a peer may send on one
	// connection, after a burst of ByteBurst (at least MaxFrame).
	ByteRate  int
	ByteBurst int
	// GossipRate is the units of work per second (PEERS entries decoded
	// and peer-table rows read) a peer may cause on one connection, after
	// a burst of GossipBurst (at least a PEERS frame's worth). It is a
	// budget apart from chat, so that gossip never holds lines back.
	GossipRate  int
	GossipBurst int
	// NewPeerRate is how many node IDs the peer table does not hold one
	// connection may introduce per second in PEERS, after a burst of
	// NewPeerBurst; entries past it are neither recorded nor dialed.
	NewPeerRate  int
	NewPeerBurst int
	// NewAuthorRate is how many origins the log has never held one
	// connection may bring live lines of per second, after a burst of
	// NewAuthorBurst. Past it the connection waits like a flood.
	NewAuthorRate  int
	NewAuthorBurst int
	// CatchupAuthors is how many origins the log has never held that
	// catch-up this node asked for may bring on one connection free of
	// the new-author budget: at most this many per request, and per
	// connection a bucket of this many refilled over each SyncInterval
	// (and the node-wide bucket of CatchupAuthorsPerHour).
	// From a version 2 peer a request also takes no more under each
	// prefix than the peer said it holds there (catchup.go). Lines of
	// other origins it has never held pay as live lines do.
	CatchupAuthors int
	// CatchupAuthorsPerHour refills the node-wide bucket of new authors
	// that catch-up may bring, which holds CatchupAuthors: however many
	// connections (and fresh node IDs) a peer uses, all of them together
	// bring at most CatchupAuthors at once and this many an hour after.
	// A newcomer takes the whole burst; a node that knows its network
	// meets a few new authors an hour.
	CatchupAuthorsPerHour int
	// MaxRefusedJoins bounds the JOIN events appended per minute for
	// peers refused because this node is full, so that fresh keys
	// knocking at a full node do not grow its log and table.
	MaxRefusedJoins int
	// MaxDialFailRecords bounds the DIAL_FAILED events appended per
	// minute. The backoff itself is kept in memory whatever the bound;
	// the events only carry it across a restart, so a flood of fake
	// addresses to dial cannot grow the log.
	MaxDialFailRecords int
	// FloodGrace is how long the read loop may wait for chat budget within
	// FloodWindow before the peer counts as flooding and is penalized.
	FloodGrace time.Duration
	// FloodWindow is the span over which waiting for budget adds up.
	FloodWindow time.Duration
	// FloodPenalty is how long a flooding peer's node ID is refused.
	FloodPenalty time.Duration
	// LogEvery spaces the log lines about one misbehaving address or peer.
	LogEvery time.Duration
	// ForkNoteEvery spaces the notes that some of the node's own lines
	// did not reach a peer (ownfork.go); the log has every one.
	ForkNoteEvery time.Duration

	// Logger receives diagnostics; the zero value discards them.
	Logger zerolog.Logger

	// ingestBatch, when set, caps the messages verified and appended
	// together below maxIngestBatch: tests put batch boundaries where
	// they want them with it.
	ingestBatch int
}

// DefaultConfig returns the limits of the design contract.
func DefaultConfig() Config {
	return Config{
		MaxFrame:              wire.DefaultMaxFrame,
		MaxPeers:              32,
		MaxConns:              128,
		MaxConnsPerIP:         64,
		SendQueue:             4096,
		SendQueueBytes:        4 << 20,
		IngestQueueBytes:      4 << 20,
		MaxParallelDials:      8,
		HandshakeTimeout:      5 * time.Second,
		PingInterval:          30 * time.Second,
		IdleTimeout:           90 * time.Second,
		WriteTimeout:          10 * time.Second,
		SyncInterval:          time.Minute,
		SyncTimeout:           30 * time.Second,
		FirstCatchupWait:      5 * time.Second,
		MaxKnownPeers:         10000,
		StaleAfter:            7 * 24 * time.Hour,
		Backoff:               DefaultBackoff(),
		ChatRate:              1000,
		ChatBurst:             10000,
		ByteRate:              1 << 20,
		ByteBurst:             16 << 20,
		GossipRate:            2000,
		GossipBurst:           10000,
		NewPeerRate:           10,
		NewPeerBurst:          1000,
		NewAuthorRate:         10,
		NewAuthorBurst:        1000,
		CatchupAuthors:        100_000,
		CatchupAuthorsPerHour: 10_000,
		MaxRefusedJoins:       60,
		MaxDialFailRecords:    120,
		FloodGrace:            30 * time.Second,
		FloodWindow:           time.Minute,
		FloodPenalty:          10 * time.Minute,
		LogEvery:              10 * time.Second,
		ForkNoteEvery:         30 * time.Second,
		Logger:                zerolog.Nop(),
	}
}

// fill replaces unset limits with the defaults, so a Config built by hand
// with only a few fields still works.
func (c *Config) fill() {
	d := DefaultConfig()
	setDefault(&c.MaxFrame, d.MaxFrame)
	setDefault(&c.MaxPeers, d.MaxPeers)
	setDefault(&c.MaxConns, d.MaxConns)
	setDefault(&c.MaxConnsPerIP, d.MaxConnsPerIP)
	setDefault(&c.SendQueue, d.SendQueue)
	setDefault(&c.SendQueueBytes, d.SendQueueBytes)
	setDefault(&c.IngestQueueBytes, d.IngestQueueBytes)
	// A frame must always fit, or it could never be sent or taken in.
	c.SendQueueBytes = max(c.SendQueueBytes, c.MaxFrame)
	c.IngestQueueBytes = max(c.IngestQueueBytes, c.MaxFrame)
	setDefault(&c.MaxParallelDials, d.MaxParallelDials)
	if c.MaxOutbound <= 0 {
		c.MaxOutbound = max(1, (c.MaxPeers-1)/2)
	}
	setDefault(&c.HandshakeTimeout, d.HandshakeTimeout)
	setDefault(&c.PingInterval, d.PingInterval)
	setDefault(&c.IdleTimeout, d.IdleTimeout)
	setDefault(&c.WriteTimeout, d.WriteTimeout)
	setDefault(&c.SyncInterval, d.SyncInterval)
	setDefault(&c.SyncTimeout, d.SyncTimeout)
	setDefault(&c.FirstCatchupWait, d.FirstCatchupWait)
	setDefault(&c.MaxKnownPeers, d.MaxKnownPeers)
	setDefault(&c.StaleAfter, d.StaleAfter)
	setDefault(&c.ChatRate, d.ChatRate)
	setDefault(&c.ChatBurst, d.ChatBurst)
	setDefault(&c.ByteRate, d.ByteRate)
	setDefault(&c.ByteBurst, d.ByteBurst)
	c.ByteBurst = max(c.ByteBurst, c.MaxFrame)
	setDefault(&c.GossipRate, d.GossipRate)
	setDefault(&c.GossipBurst, d.GossipBurst)
	c.GossipBurst = max(c.GossipBurst, 2*maxPeersEntries)
	setDefault(&c.NewPeerRate, d.NewPeerRate)
	setDefault(&c.NewPeerBurst, d.NewPeerBurst)
	setDefault(&c.NewAuthorRate, d.NewAuthorRate)
	setDefault(&c.NewAuthorBurst, d.NewAuthorBurst)
	setDefault(&c.CatchupAuthors, d.CatchupAuthors)
	setDefault(&c.CatchupAuthorsPerHour, d.CatchupAuthorsPerHour)
	setDefault(&c.MaxRefusedJoins, d.MaxRefusedJoins)
	setDefault(&c.MaxDialFailRecords, d.MaxDialFailRecords)
	setDefault(&c.FloodGrace, d.FloodGrace)
	setDefault(&c.FloodWindow, d.FloodWindow)
	setDefault(&c.FloodPenalty, d.FloodPenalty)
	setDefault(&c.LogEvery, d.LogEvery)
	setDefault(&c.ForkNoteEvery, d.ForkNoteEvery)
	if c.Backoff.Base <= 0 || c.Backoff.Max <= 0 {
		c.Backoff = d.Backoff
	}
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// maxPeersEntries and maxAddrsPerPeer come from the event vocabulary, so
// the wire can never carry more than the log accepts.
const (
	maxPeersEntries = eventlog.MaxPeersList
	maxAddrsPerPeer = eventlog.MaxAddrs
)

// CheckAddr reports whether addr is a dialable HOST:PORT, as --peer and
// /connect take it.
func CheckAddr(addr string) error { return eventlog.CheckAddr(addr) }
