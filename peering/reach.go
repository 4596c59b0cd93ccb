package peering

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/peering/wire"
)

// Reachability. A node behind NAT or a firewall can dial out but cannot be
// dialed: the address its peers see it at (its router's) refuses or drops
// new connections. Handing that address out makes every other node waste
// dials on it, and the node itself never learns why nobody dials it.
//
// So each inbound peer's observed address (the IP its connection came from,
// with the port its JOIN names) is dialed back once, as libp2p's AutoNAT
// does: a TLS handshake that must prove the peer's key, then closed. Until
// the dial-back succeeds, the address is neither passed on in PEERS nor
// dialed; once it fails, it stays out for reachTTL. The peer is told what
// was seen in a REACH frame, so that a node learns the address others see
// it at and whether they can dial it, and says so on screen.
//
// Only the observed IP is ever dialed back, never an address the peer
// names, so a peer cannot aim the dial-back at a third party; and each
// address is dialed back at most once per reachTTL, whatever the peer does.

// reachTTL is how long a dial-back result stands.
const reachTTL = 30 * time.Minute

// maxReachEntries bounds the dial-back results kept.
const maxReachEntries = 4096

// reachability is what this node learned by dialing peers back, and what
// its peers said of it.
type reachability struct {
	mu      sync.Mutex
	results map[string]reachResult // by observed address

	// What peers reported about this node, shown when it changes.
	seenAt    string
	reachable bool
}

type reachResult struct {
	pending   bool // a dial-back is under way
	reachable bool
	at        time.Time
}

// startDialBack claims addr for a dial-back and reports whether one is
// due: false while one is under way or a recent result stands.
func (r *reachability) startDialBack(addr string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.results == nil {
		r.results = map[string]reachResult{}
	}
	if res, ok := r.results[addr]; ok && (res.pending || now.Sub(res.at) < reachTTL) {
		return false
	}
	if len(r.results) >= maxReachEntries {
		for a, res := range r.results {
			if !res.pending && now.Sub(res.at) >= reachTTL {
				delete(r.results, a)
			}
		}
		if len(r.results) >= maxReachEntries {
			return false
		}
	}
	r.results[addr] = reachResult{pending: true, at: now}
	return true
}

// finish records how a dial-back to addr, or a punch, went.
func (r *reachability) finish(addr string, reachable bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.results == nil {
		r.results = map[string]reachResult{}
	}
	r.results[addr] = reachResult{reachable: reachable, at: now}
}

func (r *reachability) forget(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.results, addr)
}

// hidden reports whether addr must be neither passed on nor dialed: a
// dial-back to it is under way or recently failed.
func (r *reachability) hidden(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[addr]
	return ok && (res.pending || (!res.reachable && time.Since(res.at) < reachTTL))
}

// knownReachable reports whether a recent dial-back to addr worked.
func (r *reachability) knownReachable(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[addr]
	return ok && !res.pending && res.reachable && time.Since(res.at) < reachTTL
}

// knownUnreachable reports whether a recent dial-back to addr failed.
func (r *reachability) knownUnreachable(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[addr]
	return ok && !res.pending && !res.reachable && time.Since(res.at) < reachTTL
}

// visible drops the hidden addresses from addrs.
func (r *reachability) visible(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if !r.hidden(a) {
			out = append(out, a)
		}
	}
	return out
}

// dialBack checks whether c's peer can be dialed at the address its
// connection came from, tells the peer, and announces the peer to the
// others only if it can. It runs once per inbound connection, beside it.
func (n *Node) dialBack(ctx context.Context, c *conn, name string) {
	defer c.wg.Done()
	addr := c.addrs[0]
	if !n.reach.startDialBack(addr, time.Now()) {
		if n.reach.knownReachable(addr) {
			n.announce(c, name)
		} else {
			n.announceAt(c, name, []string{})
		}
		return
	}
	// The probe ends with the node or the connection, whichever goes
	// first: a peer that left is neither probed on nor announced.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.done, cancel)
	defer stop()
	err := n.probe(ctx, addr, c)
	if ctx.Err() != nil {
		n.reach.forget(addr) // no result: try again next time
		return
	}
	reachable := err == nil
	n.reach.finish(addr, reachable, time.Now())
	n.logger.Info().Str("peer", c.id.Short()).Str("addr", addr).Bool("reachable", reachable).AnErr("why", err).Msg("dial-back")
	if c.done.Err() != nil {
		return // the result stands for the address; the peer has left
	}
	c.sendMsg(wire.FrameReach, wire.ReachMsg{Addr: addr, Reachable: reachable})
	if reachable {
		n.announce(c, name)
	} else {
		n.announceAt(c, name, []string{})
		n.introduce(c)
	}
}

// probe dials addr and completes a TLS handshake, which must prove c's
// key; it says nothing more and closes.
func (n *Node) probe(ctx context.Context, addr string, c *conn) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.HandshakeTimeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	tc := tls.Client(raw, n.clientTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	id, err := PeerID(tc.ConnectionState())
	if err != nil {
		return err
	}
	if id != c.id {
		return fmt.Errorf("%s answers as %s", addr, id.Short())
	}
	return nil
}

// onReach takes what a peer says about this node's address and shows it
// when it changes. A peer can lie here, but only about what is shown:
// nothing else depends on it.
func (n *Node) onReach(c *conn, payload []byte) error {
	var msg wire.ReachMsg
	if err := wire.DecodeStrict(payload, &msg); err != nil {
		return violation(fmt.Errorf("REACH: %w", err))
	}
	if err := CheckAddr(msg.Addr); err != nil {
		return violation(fmt.Errorf("REACH: %w", err))
	}
	if c.reached.Swap(true) {
		return nil // a peer dials back once per connection: the rest is noise
	}
	r := &n.reach
	r.mu.Lock()
	changed := r.seenAt != msg.Addr || r.reachable != msg.Reachable
	r.seenAt, r.reachable = msg.Addr, msg.Reachable
	r.mu.Unlock()
	if !changed {
		return nil
	}
	n.display.ShowSystem(reachLine(msg.Addr, msg.Reachable))
	return nil
}

// reachLine says how peers see this node.
func reachLine(addr string, reachable bool) string {
	if reachable {
		return fmt.Sprintf("peers see you at %s and can dial you there", addr)
	}
	return fmt.Sprintf("peers see you at %s but cannot dial you there (NAT or firewall): you take part through the peers you dial", addr)
}

// ReachLine says how this node's peers last said they see it, for /l; ""
// until a peer has said.
func (n *Node) ReachLine() string {
	addr, reachable := n.Reach()
	if addr == "" {
		return ""
	}
	return reachLine(addr, reachable)
}

// Reach is how this node's peers last said they see it: the address, and
// whether they could dial it. addr is "" until a peer has said.
func (n *Node) Reach() (addr string, reachable bool) {
	n.reach.mu.Lock()
	defer n.reach.mu.Unlock()
	return n.reach.seenAt, n.reach.reachable
}
