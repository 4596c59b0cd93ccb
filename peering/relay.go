package peering

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// onPeers handles a PEERS frame: record what is new and dial whom this
// node is not connected to. The peer pays for it from its gossip budget,
// a unit per entry decoded and per row looked up, and may introduce node
// IDs the table does not hold only within its new-peer budget: entries
// past it are neither recorded nor dialed, so one peer cannot flood the
// table or the dialer with names nobody else vouches for. The table never
// stops learning: once it is full, the log evicts hearsay heard of longest
// ago for each new name (eventlog's Options.MaxPeers).
func (n *Node) onPeers(ctx context.Context, from *conn, payload []byte) error {
	var msg wire.PeersMsg
	if err := wire.DecodeStrict(payload, &msg); err != nil {
		return violation(fmt.Errorf("PEERS: %w", err))
	}
	if err := msg.Validate(maxPeersEntries, maxAddrsPerPeer); err != nil {
		return violation(fmt.Errorf("PEERS: %w", err))
	}
	if err := from.chargeWork(2 * len(msg.Peers)); err != nil {
		return err
	}
	learned, err := n.recordPeers(ctx, from, msg.Peers)
	if err != nil {
		return err
	}
	// The dialer learns them outside peersMu: once its targets are at
	// their bound each new name costs a walk over them (under n.mu, which
	// the dial passes share), and a flood's hundreds of names took
	// seconds, while the next PEERS, which may name a genuine newcomer,
	// waited for peersMu.
	for _, e := range learned {
		n.learn(e.ID, e.Addrs)
	}
	return nil
}

// recordPeers appends what the entries of a PEERS from a peer bring new to
// the table, and returns the entries the dialer is to learn.
func (n *Node) recordPeers(ctx context.Context, from *conn, entries []wire.PeerEntry) ([]wire.PeerEntry, error) {
	ids := make([]eventlog.NodeID, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	// Looking the rows up and adding to them is one step, so that two
	// connections' PEERS about the same node do not both record it.
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	known, err := n.log.LookupPeers(ids)
	if err != nil {
		return nil, fmt.Errorf("read peer table: %w", err)
	}
	var news []eventlog.PeerInfo
	learned := make([]wire.PeerEntry, 0, len(entries))
	now := time.Now()
	for _, e := range entries {
		if e.ID == n.self || e.ID == from.id {
			continue
		}
		p, ok := known[e.ID]
		switch {
		case ok:
			if addsAddrs(p.Addrs, e.Addrs) {
				news = append(news, eventlog.PeerInfo{ID: e.ID, Name: e.Name, Addrs: e.Addrs})
			}
		case !from.budget.newPeers.AllowN(now, 1):
			continue
		default:
			// Whatever peers claim, the table stays bounded: once it
			// is full the log evicts the hearsay heard of longest ago
			// to make room, so a genuine newcomer is always recorded.
			news = append(news, eventlog.PeerInfo{ID: e.ID, Name: e.Name, Addrs: e.Addrs})
		}
		learned = append(learned, e)
	}
	// Only what is new is worth an event: PEERS repeats itself on every
	// connection, and the log keeps everything forever.
	if len(news) > 0 {
		res, err := n.log.Append(ctx, eventlog.Peers{From: from.id, Peers: news})
		if err != nil {
			return nil, fmt.Errorf("append PEERS: %w", err)
		}
		// Passed on as stored: what the log left out (a table of known
		// peers only) is not vouched for further.
		if stored := res[0].Body.(eventlog.Peers).Peers; len(stored) > 0 {
			n.passOn(from, stored)
			n.peersChanged()
		}
	}
	return learned, nil
}

// announce tells the other peers about a newly connected one: PEERS is
// sent "on change" too, not only when a connection opens, so that groups
// of nodes that formed apart learn of each other.
func (n *Node) announce(c *conn, name string) {
	n.announceAt(c, name, c.addrs)
}

// announceAt is announce with the addresses to give; a peer that cannot
// be dialed is named with none, so that others can still name it (to
// send it a private message) without dialing it.
func (n *Node) announceAt(c *conn, name string, addrs []string) {
	frame, err := wire.EncodeFrame(wire.FramePeers, wire.PeersMsg{Peers: []wire.PeerEntry{{ID: c.id, Name: name, Addrs: addrs}}}, n.cfg.MaxFrame)
	if err != nil {
		n.logger.Error().Err(err).Msg("encode PEERS")
		return
	}
	n.broadcast(frame, c)
}

// addsAddrs reports whether offered holds an address not in have while
// have still has room.
func addsAddrs(have, offered []string) bool {
	if len(have) >= maxAddrsPerPeer {
		return false
	}
	for _, a := range offered {
		if !slices.Contains(have, a) {
			return true
		}
	}
	return false
}
