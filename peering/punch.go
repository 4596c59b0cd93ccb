package peering

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// Punching through NAT, the idea of libp2p's DCUtR. Two nodes that cannot
// be dialed (reach.go) still reach each other through a peer they share,
// but a direct connection is faster and survives that peer. A node that
// dialed both back and failed introduces them to each other: it sends
// each a PUNCH naming the other and the address the other's connections
// come from. Both then connect at once, each from its own listening port
// to the other's address. A NAT that keeps the inside port (most home
// routers' masquerade does) maps each side's connection to the very
// address the coordinator saw, so each side's outgoing SYN opens its own
// router for the other's: a simultaneous TCP open, which TCP completes
// into one connection. The node with the lower ID takes the TLS client's
// part, the other the server's, and the connection goes on like any other.
//
// When the routers do not keep ports, or answer with resets, the punch
// fails within the handshake timeout; the node says so, and everything
// still travels through the peers it has.

const (
	// maxPunchIntros bounds the introductions a coordinator sends on one
	// connection, and the PUNCH frames a node takes from one.
	maxPunchIntros = 8
	// maxPunches bounds the punches under way at once.
	maxPunches = 4
	// punchCooldown spaces punches towards one address.
	punchCooldown = time.Minute
)

// punchState is a node's bookkeeping of punches.
type punchState struct {
	inFlight int                  // under n.mu
	last     map[string]time.Time // under n.mu: last punch towards each address
}

// introduce tells c's peer, whose dial-back just failed, about every other
// connected peer that cannot be dialed either, and them about it.
func (n *Node) introduce(c *conn) {
	if !canPunch {
		return
	}
	n.mu.Lock()
	var others []*conn
	for _, o := range n.conns {
		if o != c && o.inbound && o.listed && len(o.addrs) > 0 && n.reach.knownUnreachable(o.addrs[0]) {
			others = append(others, o)
		}
	}
	names := map[*conn]string{c: c.name}
	for _, o := range others {
		names[o] = o.name
	}
	n.mu.Unlock()
	for _, o := range others {
		if !c.takeIntro() || !o.takeIntro() {
			continue
		}
		o.sendMsg(wire.FramePunch, wire.PunchMsg{ID: c.id, Name: names[c], Addr: c.addrs[0]})
		c.sendMsg(wire.FramePunch, wire.PunchMsg{ID: o.id, Name: names[o], Addr: o.addrs[0]})
		n.logger.Info().Str("a", c.id.Short()).Str("b", o.id.Short()).Msg("introduced two peers behind NAT")
	}
}

// takeIntro counts one introduction on c, or reports that c had its share.
func (c *conn) takeIntro() bool { return c.intros.Add(1) <= maxPunchIntros }

// onPunch starts a punch that c's peer asked for.
func (n *Node) onPunch(ctx context.Context, c *conn, payload []byte) error {
	var msg wire.PunchMsg
	if err := wire.DecodeStrict(payload, &msg); err != nil {
		return violation(fmt.Errorf("PUNCH: %w", err))
	}
	if msg.ID.IsZero() {
		return violation(errors.New("PUNCH: node id is missing"))
	}
	if err := eventlog.CheckName(msg.Name); err != nil {
		return violation(fmt.Errorf("PUNCH: %w", err))
	}
	if err := CheckAddr(msg.Addr); err != nil {
		return violation(fmt.Errorf("PUNCH: %w", err))
	}
	// Only a peer this node dialed coordinates its punches (it is the one
	// that dialed this node back and failed), and only while peers say
	// this node cannot be dialed: anyone else's PUNCH is ignored.
	_, reachable := n.Reach()
	if !canPunch || c.inbound || reachable || !c.reached.Load() || !c.takeIntro() || msg.ID == n.self || msg.ID == c.id {
		return nil
	}
	now := time.Now()
	n.mu.Lock()
	if n.punches.last == nil {
		n.punches.last = map[string]time.Time{}
	}
	busy := n.conns[msg.ID] != nil || n.bannedLocked(msg.ID) ||
		n.punches.inFlight >= maxPunches || now.Sub(n.punches.last[msg.Addr]) < punchCooldown ||
		len(n.conns)+n.dialing >= n.cfg.MaxPeers || n.open >= n.cfg.MaxConns
	if !busy {
		for addr, at := range n.punches.last {
			if now.Sub(at) >= punchCooldown {
				delete(n.punches.last, addr)
			}
		}
		n.punches.inFlight++
		n.punches.last[msg.Addr] = now
		n.open++ // released when the punch's connection ends
	}
	n.mu.Unlock()
	if busy {
		return nil
	}
	n.wg.Add(1)
	go n.punch(ctx, msg)
	return nil
}

// punch connects to msg's node from the listening port and, if that
// works, serves the connection, as the TLS client if this node has the
// lower ID.
func (n *Node) punch(ctx context.Context, msg wire.PunchMsg) {
	defer n.wg.Done()
	defer n.release("")
	raw, err := n.dialFromListenPort(ctx, msg.Addr)
	n.mu.Lock()
	n.punches.inFlight--
	n.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			n.logger.Info().Err(err).Str("peer", msg.ID.Short()).Str("addr", msg.Addr).Msg("punch failed")
			n.display.ShowSystem(fmt.Sprintf("no direct connection to %s (%v); lines still travel through your peers", n.label(msg.ID, msg.Name), err))
		}
		return
	}
	n.logger.Info().Str("peer", msg.ID.Short()).Str("addr", msg.Addr).Msg("punched through NAT")
	// Only a punch gets through there: nobody is to dial it, nor be told
	// of it, and it needs no dial-back.
	n.reach.finish(msg.Addr, false, time.Now())
	var t *target
	if n.self.Less(msg.ID) {
		t = &target{key: "punch " + msg.ID.String(), id: msg.ID, addrs: []string{msg.Addr}, addr: msg.Addr, dialing: true}
		n.mu.Lock()
		n.dialing++ // dialDone takes it back
		n.mu.Unlock()
	}
	n.serve(ctx, raw, t)
}

// dialFromListenPort connects to addr from the port this node listens on.
func (n *Node) dialFromListenPort(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   n.cfg.HandshakeTimeout,
		LocalAddr: &net.TCPAddr{Port: n.Port()},
		Control:   reusePort,
	}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Timeout() {
			return nil, fmt.Errorf("%s did not answer within %v", addr, n.cfg.HandshakeTimeout)
		}
		return nil, err
	}
	return raw, nil
}
