package peering

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Reachability. A node behind NAT or a firewall cannot be dialed: the
// address its peers see it at (the router's, with the port it says it
// listens on) refuses. Handing that address on would have every node that
// hears of it dial it in vain, again and again.
//
// So a node that accepts a connection checks the address it would hand
// out, the observed IP with the peer's listen port, by dialing it back
// (as libp2p's AutoNAT does): a TLS handshake that must prove the peer's
// key, then a GOODBYE. Until the dial-back succeeds the address counts
// as unreachable: it is left out of PEERS, out of announcements and out
// of this node's own dials. The result goes back to the peer in a REACH
// frame (as libp2p's identify reports the observed address), so each node
// learns how others see it and says so once per change.

// FrameReach tells a peer the address this node sees it at and whether a
// dial back to it worked.
const FrameReach = "REACH"

// ReachMsg is the payload of REACH.
type ReachMsg struct {
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
}

// probeReason is the GOODBYE that ends a dial-back.
const probeReason = "reachability probe"

// startReach begins the reachability check of a newly registered
// connection: an address this node dialed is reachable by definition; the
// one an inbound peer would be handed out at is checked by dialing back,
// on a goroutine the connection owns.
func (n *Node) startReach(ctx context.Context, c *conn) {
	addr := c.listenAddr()
	if addr == "" {
		return
	}
	if !c.inbound {
		n.mu.Lock()
		delete(n.unreachable, addr)
		n.mu.Unlock()
		return
	}
	n.mu.Lock()
	n.unreachable[addr] = true
	n.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// The connection ending ends the probe.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-c.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		ok := n.probe(ctx, c.id, addr) == nil
		n.mu.Lock()
		if ok {
			delete(n.unreachable, addr)
		}
		n.mu.Unlock()
		if ok {
			n.announce(c, n.peerName(c))
		}
		c.sendMsg(FrameReach, ReachMsg{Addr: addr, Reachable: ok})
	}()
}

// probe dials addr and checks that the node there holds id's key.
func (n *Node) probe(ctx context.Context, id eventlog.NodeID, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	tc := tls.Client(raw, n.clientTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	got, err := PeerID(tc.ConnectionState())
	if err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("%s answers as %s, not %s", addr, got.Short(), id.Short())
	}
	writeGoodbye(tc, probeReason)
	return nil
}

// isProbe reports whether a handshake ended because it was a peer's
// dial-back, which is nothing to log.
func isProbe(err error) bool {
	var bye errGoodbye
	return errors.As(err, &bye) && bye.reason == probeReason
}

// onReach records how a peer sees this node and says so when that is new.
func (n *Node) onReach(c *conn, payload []byte) error {
	if c.inbound || c.reachTold.Swap(true) {
		// Only the side that accepted a connection dials back, once.
		return violation(fmt.Errorf("unasked REACH"))
	}
	var m ReachMsg
	if err := json.Unmarshal(payload, &m); err != nil {
		return violation(fmt.Errorf("REACH: %w", err))
	}
	if err := eventlog.CheckAddr(m.Addr); err != nil {
		return violation(fmt.Errorf("REACH: %w", err))
	}
	n.mu.Lock()
	last, seen := n.seenAs[m.Addr]
	n.seenAs[m.Addr] = m.Reachable
	if !seen && len(n.seenAs) > maxSeenAs {
		// Peers may claim anything; keep only a few claims.
		for a := range n.seenAs {
			if a != m.Addr {
				delete(n.seenAs, a)
				break
			}
		}
	}
	n.mu.Unlock()
	if seen && last == m.Reachable {
		return nil
	}
	name := n.label(c.id, n.peerName(c))
	if m.Reachable {
		n.display.ShowSystem(fmt.Sprintf("%s sees this node at %s and can dial it there", name, m.Addr))
	} else {
		n.display.ShowSystem(fmt.Sprintf("%s sees this node at %s but cannot dial it there: this node is behind NAT or a firewall, and others reach it through the peers it dials", name, m.Addr))
	}
	return nil
}

// maxSeenAs bounds the addresses others told this node it has.
const maxSeenAs = 16

// Reach is how peers see this node: each address a peer observed, and
// whether that peer could dial it back.
func (n *Node) Reach() map[string]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]bool, len(n.seenAs))
	for a, ok := range n.seenAs {
		out[a] = ok
	}
	return out
}

// reachable drops the addresses this node found it cannot dial, or has
// not checked yet.
func (n *Node) reachable(addrs []string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reachableLocked(addrs)
}

// reachableLocked is reachable with n.mu held.
func (n *Node) reachableLocked(addrs []string) []string {
	if !slices.ContainsFunc(addrs, func(a string) bool { return n.unreachable[a] }) {
		return addrs
	}
	return slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return n.unreachable[a] })
}
