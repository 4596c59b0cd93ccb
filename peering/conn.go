package peering

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Reasons a connection ends, as logged and as sent in GOODBYE.
var (
	errSelf      = errors.New("connected to itself")
	errSlow      = errors.New("send queue full: peer too slow")
	errShutdown  = errors.New("shutdown")
	errDuplicate = errors.New("duplicate connection")
	errFull      = errors.New("full")
	errBanned    = errors.New("banned")
	errBusy      = errors.New("busy: too many new peers, try later")
)

// conn is one authenticated connection. Its read loop runs in the
// goroutine that serves it; its write loop is a second goroutine that
// conn owns, fed by a bounded queue, so a slow peer only ever fills its own
// queue and is then dropped.
type conn struct {
	n       *Node
	tc      *tls.Conn
	fr      *wire.FrameReader
	id      eventlog.NodeID
	name    string
	addrs   []string // where the peer listens, best first
	inbound bool
	since   time.Time
	tie     []byte // same on both ends; orders two connections of one dialer
	// peerFull is set when the peer said in its JOIN that it has no room:
	// the connection only brings its PEERS.
	peerFull bool
	// version is the protocol version of the peer's JOIN: what frames it
	// can read (wire.MinVersion).
	version int

	sendq  chan []byte  // live frames
	queued atomic.Int64 // bytes in sendq, bounded by Config.SendQueueBytes
	catchq chan []byte  // catch-up frames, sent when sendq is empty
	// catchRoom bounds the bytes of what waits in catchq: a LINES frame
	// may be a hundred times the size of a CATCHUP one. Past its own
	// part it shares the node's room (room.go).
	catchRoom *queueRoom
	ingest    chan inbound // read loop -> ingest loop
	// chain is what the ingest loop holds back of a catch-up answer for
	// a voucher (pendingChain); the ingest loop's alone.
	chain pendingChain
	// ingestRoom bounds the bytes of what waits in ingest: the read loop
	// takes room before it hands a message over, the ingest loop gives it
	// back once the message is stored. Past its own part it shares the
	// node's room (room.go).
	ingestRoom *queueRoom
	// done ends when the connection closes, for what waits on a context.
	done      context.Context
	stopDone  context.CancelFunc
	cu        *catchup   // catch-up both ways (catchup.go)
	budget    connBudget // what the peer may make this node spend (budget.go)
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	// listed is set (under n.mu) once the peer's arrival is recorded and
	// shown, so /l never names a peer before "*** X joined" appears.
	listed bool

	// replaced is set (under n.mu) when a newer connection to the same
	// peer took this one's place, so its end is not the peer leaving.
	replaced bool
	// replacing is the connection this one took the place of (under n.mu).
	replacing *conn
	// connectRecorded and endRecorded say whether this connection's
	// CONNECT and DISCONNECT are in the log (under n.recordMu).
	connectRecorded, endRecorded bool

	// intros counts the NAT introductions sent or taken on this
	// connection (punch.go).
	intros atomic.Int32
	// reached is set once the peer's REACH has been taken (reach.go).
	reached atomic.Bool
	// forkReplies paces the lines of the peer's own that this node shows
	// it because they conflict with what it sent (ownfork.go).
	forkReplies *rate.Limiter
}

// joinEvent is the peer's introduction as the log records it, under the
// name given (c.name, read under n.mu once c is registered).
func (c *conn) joinEvent(name string) eventlog.Join {
	return eventlog.Join{ID: c.id, Name: name, Addrs: c.addrs, Version: wire.ProtocolVersion}
}

func (c *conn) listenAddr() string {
	if len(c.addrs) == 0 {
		return ""
	}
	return c.addrs[0]
}

// handshake runs TLS and the JOIN exchange under the handshake timeout and
// returns the authenticated connection.
func (n *Node) handshake(ctx context.Context, raw net.Conn, t *target) (*conn, error) {
	if err := raw.SetDeadline(time.Now().Add(n.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	// Shutdown must not wait for a slow handshake.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var tc *tls.Conn
	if t == nil {
		tc = tls.Server(raw, n.serverTLS)
	} else {
		tc = tls.Client(raw, n.clientTLS)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	id, err := PeerID(tc.ConnectionState())
	if err != nil {
		return nil, err
	}
	fr := wire.NewFrameReader(tc, n.cfg.MaxFrame)
	if err := n.beforeJoin(tc, fr, id); err != nil {
		return nil, err
	}
	ours := n.joinMsg()
	ours.Full = t == nil && n.full()
	join, err := wire.EncodeFrame(wire.FrameJoin, ours, n.cfg.MaxFrame)
	if err != nil {
		return nil, err
	}
	if _, err := tc.Write(join); err != nil {
		return nil, fmt.Errorf("send JOIN: %w", err)
	}
	typ, payload, err := fr.Next()
	if err != nil {
		return nil, fmt.Errorf("read JOIN from %s: %w", id.Short(), err)
	}
	if typ != wire.FrameJoin {
		return nil, notJoin(id, typ, payload)
	}
	var msg wire.JoinMsg
	if err := wire.DecodeStrict(payload, &msg); err != nil {
		return nil, fmt.Errorf("JOIN from %s: %w", id.Short(), err)
	}
	if err := msg.Validate(maxAddrsPerPeer); err != nil {
		return nil, fmt.Errorf("JOIN from %s: %w", id.Short(), err)
	}
	if msg.ID != id {
		return nil, fmt.Errorf("JOIN names %s but the TLS key is %s", msg.ID.Short(), id.Short())
	}
	if id == n.self {
		if t != nil {
			n.markSelf(t)
		}
		return nil, errSelf
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	// Both ends derive the same value from the TLS session, and no two
	// connections share it: a tie-break both sides agree on.
	cs := tc.ConnectionState()
	tie, err := cs.ExportKeyingMaterial("p2pchat tie-break", nil, 8)
	if err != nil {
		return nil, err
	}
	c := &conn{
		tie:      tie,
		peerFull: msg.Full,
		n:        n,
		tc:       tc,
		fr:       fr,
		id:       id,
		name:     msg.Name,
		inbound:  t == nil,
		since:    time.Now(),
		sendq:    make(chan []byte, n.cfg.SendQueue),
		catchq:   make(chan []byte, catchupPage),
		ingest:   make(chan inbound, maxIngestBatch*2),
		closing:  make(chan struct{}),

		ingestRoom: newQueueRoom(int64(n.cfg.IngestQueueBytes), int64(max(ingestFreeBytes, n.cfg.MaxFrame)), n.ingestRoom),
		catchRoom:  newQueueRoom(catchQueueBytes(&n.cfg), int64(max(catchFreeBytes, 2*n.cfg.MaxFrame)), n.catchRoom),

		forkReplies: rate.NewLimiter(forkReplyRate, forkReplyBurst),
	}
	c.done, c.stopDone = context.WithCancel(context.Background())
	c.budget.setup(&n.cfg)
	c.version = msg.Version
	c.cu = newCatchup(n, c, msg.Version)
	c.addrs = peerAddrs(raw, msg, t)
	return c, nil
}

// peerAddrs is where the peer can be dialed: for an outbound connection
// the address that worked, for an inbound one the address it came from
// with the port it says it listens on; then whatever it announced.
func peerAddrs(raw net.Conn, msg wire.JoinMsg, t *target) []string {
	var first string
	if t != nil {
		first = raw.RemoteAddr().String()
		if t.addr != "" {
			first = t.addr
		}
	} else if host, _, err := net.SplitHostPort(raw.RemoteAddr().String()); err == nil {
		first = net.JoinHostPort(host, strconv.Itoa(msg.Port))
	}
	out := []string{first}
	for _, a := range msg.Addrs {
		if a != first && len(out) < maxAddrsPerPeer {
			out = append(out, a)
		}
	}
	return out
}

// runConn registers an authenticated connection, records it, serves it
// until it ends and records the end. t is the dial target of an outbound
// connection; it is told of the outcome only once the connection is
// registered, so the dialer never sees the peer as neither dialing nor
// connected and dials it twice.
func (n *Node) runConn(ctx context.Context, c *conn, t *target) {
	// Shutdown must not wait for what a refused peer is told.
	stop := context.AfterFunc(ctx, func() { _ = c.tc.SetDeadline(time.Unix(1, 0)) })
	admitted := n.admitPeer(ctx, c, t)
	stop()
	if !admitted {
		return
	}
	n.serveConn(ctx, c)
	n.recordEnd(ctx, c)
}

// admitPeer decides whether c becomes the peer's connection (closing the
// one it replaces), tells the dialer of t how its dial ended, and answers
// a peer it refuses.
func (n *Node) admitPeer(ctx context.Context, c *conn, t *target) bool {
	if c.peerFull {
		if c.inbound {
			// Full is an answer to a dial: a peer that dials in and says
			// it is full would only get its PEERS handled for free.
			err := violation(errors.New("JOIN marked full on a connection it opened"))
			n.limitedLog("peer "+c.id.String(), warnLevel).Err(err).Str("peer", c.id.Short()).Msg("dropping peer")
			n.punish(c.id, err)
			c.writeNow(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: errPenalized.Error()})
			return false
		}
		n.referral(ctx, c, t)
		return false
	}
	if n.isBanned(c.id) {
		n.logger.Info().Str("peer", c.id.Short()).Msg("refused banned peer")
		c.writeNow(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: errBanned.Error()})
		if t != nil {
			n.dialDone(t, c, errBanned)
		}
		return false
	}
	if c.inbound && !n.admitNewID(c.id) {
		n.limitedLog("new peers", zerolog.InfoLevel).Str("peer", c.id.Short()).Msg("refused peer: too many new node IDs at once")
		c.writeNow(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: errBusy.Error()})
		return false
	}
	status, old := n.register(c)
	if t != nil {
		n.dialDone(t, c, nil)
	}
	switch status {
	case registerFull:
		// Still useful to a newcomer: tell it whom else to dial.
		n.recordRefused(ctx, c)
		if frame, err := n.peersFrame(); err == nil {
			c.writeFrameNow(frame)
		}
		c.writeNow(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: errFull.Error()})
		n.logger.Info().Str("peer", c.id.Short()).Msg("refused peer: full")
		return false
	case registerDuplicate:
		c.writeNow(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: errDuplicate.Error()})
		return false
	}
	if old != nil {
		old.close(errDuplicate)
	}
	return true
}

// admitNewID reports whether a peer that dials in may be let in: a node
// ID the peer table does not hold yet spends the node's budget for new
// IDs (Config.NewPeerRate, NewPeerBurst), so that fresh keys, which cost
// nothing, cannot grow the log and the table faster than that. Known
// peers never wait for it.
func (n *Node) admitNewID(id eventlog.NodeID) bool {
	known, err := n.log.LookupPeers([]eventlog.NodeID{id})
	if err != nil || len(known) > 0 {
		return true // a read error is this node's problem, not the peer's
	}
	return n.newIDs.Allow()
}

// recordRefused records the JOIN of a peer that was not connected (this
// node or it was full): the node did learn of it. Such peers cost no
// slot, so their JOINs are bounded apart: at most Config.MaxRefusedJoins
// a minute, past which they are not recorded.
func (n *Node) recordRefused(ctx context.Context, c *conn) {
	if !n.refusedJoins.Allow() {
		return
	}
	if _, err := n.log.Append(ctx, c.joinEvent(c.name)); err != nil { // never registered: c is ours alone
		n.logger.Error().Err(err).Msg("append JOIN")
	}
}

// serveConn records a registered connection, shows the peer's arrival and
// runs the connection's loops until it ends.
func (n *Node) serveConn(ctx context.Context, c *conn) {
	c.wg.Add(2)
	go c.writeLoop()
	go c.ingestLoop(ctx)
	stop := context.AfterFunc(ctx, func() { c.close(errShutdown) })
	defer stop()

	if err := n.recordConnect(ctx, c); err != nil {
		c.close(err)
	} else {
		// Registered, c.name is another connection's to change (a NICK
		// relayed by another peer): read it under n.mu.
		name := n.peerName(c)
		if n.setPresent(c.id, true) {
			n.display.ShowSystem(n.label(c.id, name) + " joined")
			if c.inbound {
				// Announced once the address it came from is known to
				// take connections (reach.go).
				c.wg.Add(1)
				go n.dialBack(ctx, c, name)
			} else {
				n.announce(c, name)
			}
		}
		n.mu.Lock()
		c.listed = true
		n.mu.Unlock()
		n.logger.Info().Str("peer", c.id.Short()).Str("name", name).Str("addr", c.listenAddr()).Bool("inbound", c.inbound).Msg("connected")
		if frame, err := n.peersFrame(); err == nil {
			c.send(frame)
		}
		c.wg.Add(1)
		go c.syncLoop()
		c.close(c.readLoop(ctx))
	}
	close(c.ingest) // the read loop, its only producer, has ended
	c.wg.Wait()
	c.cu.releaseRequests()
	c.releaseBulk()
	n.caughtUp(c) // an answer that will never come must not hold the others back
}

// recordConnect writes c's JOIN and CONNECT. The connection c replaced
// gets its DISCONNECT first, in the same append, if it has none yet: the
// log never shows a peer's DISCONNECT after the CONNECT of the connection
// that took its place, which would make it look gone while connected. A
// connection replaced before it was recorded is not recorded at all.
func (n *Node) recordConnect(ctx context.Context, c *conn) error {
	n.recordMu.Lock()
	defer n.recordMu.Unlock()
	n.mu.Lock()
	replaced, old := c.replaced, c.replacing
	c.replacing = nil // no chain of connections kept alive
	n.mu.Unlock()
	if replaced {
		return errDuplicate
	}
	var bodies []eventlog.Body
	if old != nil && old.connectRecorded && !old.endRecorded {
		old.endRecorded = true
		bodies = append(bodies, eventlog.Disconnect{ID: old.id, Reason: errDuplicate.Error()})
	}
	bodies = append(bodies, c.joinEvent(n.peerName(c)), eventlog.Connect{ID: c.id, Addr: c.listenAddr(), Inbound: c.inbound})
	if _, err := n.log.Append(ctx, bodies...); err != nil {
		return fmt.Errorf("append CONNECT: %w", err)
	}
	c.connectRecorded = true
	n.peersChanged()
	return nil
}

// recordEnd records the end of a connection and, unless another one to
// the same peer took its place, shows the peer leaving and schedules the
// redial.
func (n *Node) recordEnd(ctx context.Context, c *conn) {
	// Record the end even during shutdown: the log must say the peer is
	// gone. The caller closes the log only after Run returns.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n.recordMu.Lock()
	if !n.unregister(c) {
		// Replaced by a newer connection to the same peer: the peer has
		// not left, but this connection's CONNECT gets its DISCONNECT,
		// unless the newer one wrote it already before its own CONNECT.
		if c.connectRecorded && !c.endRecorded {
			c.endRecorded = true
			if _, err := n.log.Append(recordCtx, eventlog.Disconnect{ID: c.id, Reason: errDuplicate.Error()}); err != nil {
				n.logger.Error().Err(err).Msg("append DISCONNECT")
			}
		}
		n.recordMu.Unlock()
		return
	}
	reason := c.closeErr.Error()
	n.logger.Info().Str("peer", c.id.Short()).Str("reason", reason).Msg("disconnected")
	c.endRecorded = true
	if _, err := n.log.Append(recordCtx, eventlog.Disconnect{ID: c.id, Reason: reason}); err != nil {
		n.logger.Error().Err(err).Msg("append DISCONNECT")
	}
	n.recordMu.Unlock()
	n.peersChanged()
	// A connection closed as a duplicate has a twin on its way: the peer
	// has not left.
	var bye errGoodbye
	replacedRemotely := errors.As(c.closeErr, &bye) && bye.reason == errDuplicate.Error()
	if !errors.Is(c.closeErr, errShutdown) && !replacedRemotely && n.setPresent(c.id, false) {
		n.display.ShowSystem(n.label(c.id, n.peerName(c)) + " left")
	}
	n.peerDown(c)
}

type registerStatus int

const (
	registerOK registerStatus = iota
	registerDuplicate
	registerFull
)

// register makes c the peer's connection. Of two connections to one peer,
// both sides keep the one dialed by the lower node ID, so a simultaneous
// open ends with exactly one connection whatever the timing.
func (n *Node) register(c *conn) (registerStatus, *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.conns[c.id]
	if old == nil {
		if len(n.conns) >= n.cfg.MaxPeers {
			return registerFull, nil
		}
		n.conns[c.id] = c
		return registerOK, nil
	}
	if !n.prefer(c, old) {
		return registerDuplicate, nil
	}
	old.replaced = true
	c.replacing = old
	n.conns[c.id] = c
	return registerOK, old
}

// prefer reports whether the new connection c should replace old.
func (n *Node) prefer(c, old *conn) bool {
	dialer := func(x *conn) eventlog.NodeID {
		if x.inbound {
			return x.id
		}
		return n.self
	}
	if dc, do := dialer(c), dialer(old); dc != do {
		return dc.Less(do)
	}
	// Same dialer twice (a --peer address and the same peer's ID, say):
	// both ends keep the connection with the lower tie value, so they
	// keep the same one whichever arrived first on each side.
	return bytes.Compare(c.tie, old.tie) < 0
}

// peerName is the name of c's peer, which renamed changes under n.mu.
func (n *Node) peerName(c *conn) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return c.name
}

func (n *Node) unregister(c *conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[c.id] != c {
		return false
	}
	delete(n.conns, c.id)
	return true
}

// close ends the connection: the write loop flushes what is queued (a
// goodbye, say), then closes the socket, which ends the read loop.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("closed by peer")
		}
		c.closeErr = err
		close(c.closing)
		if c.stopDone != nil {
			c.stopDone()
		}
	})
}

// send queues a frame without waiting. A full queue, in frames or in
// bytes, means the peer cannot keep up: it is dropped (and redialed later)
// rather than slowing anyone.
func (c *conn) send(frame []byte) {
	if c.queued.Add(int64(len(frame))) > int64(c.n.cfg.SendQueueBytes) {
		c.queued.Add(-int64(len(frame)))
		c.close(errSlow)
		return
	}
	select {
	case c.sendq <- frame:
	case <-c.closing:
		c.queued.Add(-int64(len(frame)))
	default:
		c.queued.Add(-int64(len(frame)))
		c.close(errSlow)
	}
}

func (c *conn) sendMsg(typ string, v any) {
	frame, err := wire.EncodeFrame(typ, v, c.n.cfg.MaxFrame)
	if err != nil {
		c.n.logger.Error().Err(err).Str("type", typ).Msg("encode frame")
		return
	}
	c.send(frame)
}

// maxCatchQueueBytes bounds the catch-up frames waiting for one peer, in
// bytes: at the answer's 32 MiB/s, 1 MiB is some 30 ms of catch-up, room
// enough to keep the connection busy.
const maxCatchQueueBytes = 1 << 20

// catchQueueBytes is the room of a connection's catch-up queue: at least
// two frames of the largest size.
func catchQueueBytes(cfg *Config) int64 {
	return int64(max(maxCatchQueueBytes, 2*cfg.MaxFrame, 2*wire.DefaultMaxFrame))
}

// sendBulk queues a catch-up frame, waiting for room, in frames and in
// bytes: catch-up moves at the pace the peer reads. It reports false if
// the connection is closing.
func (c *conn) sendBulk(frame []byte) bool {
	if c.catchRoom.take(c.done, int64(len(frame))) != nil {
		return false
	}
	select {
	case c.catchq <- frame:
		return true
	case <-c.closing:
		c.catchRoom.give(int64(len(frame)))
		return false
	}
}

// takeBulk is the write loop's side of sendBulk: frame has left catchq.
func (c *conn) takeBulk(frame []byte) []byte {
	c.catchRoom.give(int64(len(frame)))
	return frame
}

// releaseBulk gives back the room of the catch-up frames a closed
// connection never sent. Its loops have ended.
func (c *conn) releaseBulk() {
	for {
		select {
		case frame := <-c.catchq:
			c.takeBulk(frame)
		default:
			return
		}
	}
}

// writeNow writes one frame directly, for connections refused before their
// write loop starts.
func (c *conn) writeNow(typ string, v any) {
	frame, err := wire.EncodeFrame(typ, v, c.n.cfg.MaxFrame)
	if err != nil {
		return
	}
	c.writeFrameNow(frame)
}

func (c *conn) writeFrameNow(frame []byte) {
	_ = c.tc.SetWriteDeadline(time.Now().Add(c.n.cfg.WriteTimeout))
	_, _ = c.tc.Write(frame)
}

func (c *conn) writeLoop() {
	defer c.wg.Done()
	defer c.tc.Close()
	bw := bufio.NewWriterSize(c.tc, 32<<10)
	ping := time.NewTicker(c.n.cfg.PingInterval)
	defer ping.Stop()
	write := func(frame []byte) bool {
		_ = c.tc.SetWriteDeadline(time.Now().Add(c.n.cfg.WriteTimeout))
		if _, err := bw.Write(frame); err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return false
		}
		return true
	}
	flush := func() bool {
		if err := bw.Flush(); err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return false
		}
		return true
	}
	// writeQueued writes frame and whatever else is queued, live frames
	// first, then flushes once.
	writeQueued := func(frame []byte) bool {
		if !write(frame) {
			return false
		}
		for n := 0; n < 4*catchupPage; n++ {
			select {
			case frame := <-c.sendq:
				c.queued.Add(-int64(len(frame)))
				if !write(frame) {
					return false
				}
				continue
			default:
			}
			select {
			case frame := <-c.catchq:
				if !write(c.takeBulk(frame)) {
					return false
				}
				continue
			default:
			}
			break
		}
		return flush()
	}
	for {
		// Live frames go first: catch-up only fills the gaps.
		select {
		case frame := <-c.sendq:
			c.queued.Add(-int64(len(frame)))
			if !writeQueued(frame) {
				return
			}
			continue
		default:
		}
		select {
		case frame := <-c.sendq:
			c.queued.Add(-int64(len(frame)))
			if !writeQueued(frame) {
				return
			}
		case frame := <-c.catchq:
			if !writeQueued(c.takeBulk(frame)) {
				return
			}
		case <-ping.C:
			frame, _ := wire.EncodeFrame(wire.FramePing, wire.PingMsg{Nonce: uint64(time.Now().UnixNano())}, 0)
			if !write(frame) || !flush() {
				return
			}
		case <-c.closing:
			c.farewell(bw)
			return
		}
	}
}

// farewell flushes what is still queued and says goodbye, under a short
// deadline: a peer that does not read gets nothing more.
func (c *conn) farewell(bw *bufio.Writer) {
	_ = c.tc.SetWriteDeadline(time.Now().Add(time.Second))
	if errors.Is(c.closeErr, errSlow) {
		return
	}
	for more := true; more; {
		select {
		case frame := <-c.sendq:
			if _, err := bw.Write(frame); err != nil {
				return
			}
		default:
			more = false
		}
	}
	if reason := goodbyeReason(c.closeErr); reason != "" {
		frame, _ := wire.EncodeFrame(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: reason}, 0)
		_, _ = bw.Write(frame)
	}
	_ = bw.Flush()
}

// goodbyeReason is what the peer is told, only for ends it should know of.
func goodbyeReason(err error) string {
	for _, known := range []error{errShutdown, errDuplicate, errFull, errBanned, errPenalized} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return ""
}

// readLoop handles frames until the connection fails or ends. Its error
// says why.
func (c *conn) readLoop(ctx context.Context) error {
	for {
		if err := c.tc.SetReadDeadline(time.Now().Add(c.n.cfg.IdleTimeout)); err != nil {
			return err
		}
		typ, payload, err := c.fr.Next()
		if err != nil {
			select {
			case <-c.closing:
				return c.closeErr
			default:
			}
			if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformedFrame) {
				err = violation(err)
				c.n.punish(c.id, err)
			}
			return err
		}
		if err := c.handle(ctx, typ, payload); err != nil {
			if errors.As(err, new(errGoodbye)) {
				return err
			}
			c.n.limitedLog("peer "+c.id.String(), warnLevel).Err(err).Str("peer", c.id.Short()).Str("frame", typ).Msg("dropping peer")
			c.n.punish(c.id, err)
			return err
		}
	}
}

// errGoodbye carries the reason a peer gave for leaving.
type errGoodbye struct{ reason string }

func (e errGoodbye) Error() string { return "goodbye: " + e.reason }

func (c *conn) handle(ctx context.Context, typ string, payload []byte) error {
	if err := c.charge(typ, len(typ)+len(payload)+2); err != nil {
		return err
	}
	switch typ {
	case wire.FrameChat, wire.FrameNick, wire.FrameCatchup, wire.FrameSealed, wire.FrameAck:
		body, err := wire.DecodeSigned(typ, payload)
		if err != nil {
			return violation(err)
		}
		m := inbound{body: body, live: typ != wire.FrameCatchup, size: len(payload)}
		if !m.live {
			free, err := c.cu.admit(ctx, body, len(payload))
			if err != nil {
				return err
			}
			m.charged = !free
		}
		return c.push(m)
	case wire.FrameLines:
		return c.onLines(ctx, len(typ)+len(payload)+2, payload)
	case wire.FrameSynced:
		return c.cu.onSynced(payload)
	case wire.FrameSync:
		return c.cu.onSync(payload)
	case wire.FrameSyncQuery:
		return c.cu.onQuery(payload)
	case wire.FrameSyncPrints:
		return c.cu.onPrints(payload)
	case wire.FrameHave:
		if err := wire.DecodeStrict(payload, &struct{}{}); err != nil {
			return violation(fmt.Errorf("HAVE: %w", err))
		}
		c.cu.onHave()
	case wire.FramePong:
		var pong wire.PingMsg
		if err := wire.DecodeStrict(payload, &pong); err != nil {
			return violation(fmt.Errorf("PONG: %w", err))
		}
	case wire.FramePeers:
		return c.n.onPeers(ctx, c, payload)
	case wire.FrameReach:
		return c.n.onReach(c, payload)
	case wire.FramePunch:
		return c.n.onPunch(ctx, c, payload)
	case wire.FramePing:
		var ping wire.PingMsg
		if err := wire.DecodeStrict(payload, &ping); err != nil {
			return violation(fmt.Errorf("PING: %w", err))
		}
		c.sendMsg(wire.FramePong, ping)
	case wire.FrameGoodbye:
		return goodbyeFrom(payload)
	case wire.FrameJoin:
		return violation(errors.New("second JOIN"))
	}
	// Unknown types are ignored so that later protocol versions can add
	// frames.
	return nil
}

// onLines takes a LINES frame of frameBytes bytes: each of its lines goes
// the way a CATCHUP line goes (catchup.admit, then the ingest queue),
// charged its share of the frame's bytes, so that packing lines together
// neither frees them of a bound nor makes one of them pay for the rest.
// A frame that does not decode or validate is a violation, as a
// malformed CATCHUP is.
func (c *conn) onLines(ctx context.Context, frameBytes int, payload []byte) error {
	lines, err := wire.DecodeLines(payload)
	if err != nil {
		return violation(err)
	}
	share, extra := frameBytes/len(lines), frameBytes%len(lines)
	for i, line := range lines {
		size := share
		if i < extra {
			size++
		}
		free, err := c.cu.admit(ctx, line, size)
		if err != nil {
			return err
		}
		if err := c.push(inbound{body: line, charged: !free, size: size}); err != nil {
			return err
		}
	}
	return nil
}

// referral handles a dial answered by a full peer: it is not connected,
// but its PEERS says whom else to dial. A full node owes one PEERS and a
// GOODBYE; frames are charged as on any connection, only the first PEERS
// is handled, and a violation is punished. Shutdown ends it at once.
func (n *Node) referral(ctx context.Context, c *conn, t *target) {
	stop := context.AfterFunc(ctx, func() {
		c.close(errShutdown)
		_ = c.tc.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	n.recordRefused(ctx, c)
	_ = c.tc.SetReadDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
	err := errFull
	for ctx.Err() == nil {
		typ, payload, rerr := c.fr.Next()
		if rerr != nil {
			if errors.Is(rerr, wire.ErrFrameTooLarge) || errors.Is(rerr, wire.ErrMalformedFrame) {
				err = violation(rerr)
			}
			break
		}
		if typ == wire.FrameGoodbye {
			break
		}
		if cerr := c.charge(typ, len(typ)+len(payload)+2); cerr != nil {
			err = cerr
			break
		}
		if typ == wire.FramePeers {
			if perr := n.onPeers(ctx, c, payload); perr != nil {
				err = perr
			}
			break
		}
	}
	n.punish(c.id, err)
	if t != nil {
		n.dialDone(t, c, err)
	}
	n.logger.Info().Str("peer", c.id.Short()).Msg("peer is full; dialing the peers it named instead")
}
