package peering

import (
	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// passOn forwards to the other peers the entries of a PEERS that were news
// to this node. Each node forwards an entry only the first time it learns
// it (or learns a new address of it), so news of a node crosses the whole
// mesh, once per connection, and then stops. Without it a node learns only
// of its neighbours' neighbours, and cannot name, to send a private
// message, a node further away.
//
// What is passed on is bounded node-wide (passOnRate entries a second
// after a burst of passOnBurst): news arrives from hearsay nobody can
// check, and without the bound a flood of invented names that one peer
// sends would be sent on, in full, by every node to every neighbour. Past
// the bound the news stays in the peer table, which every new connection
// is sent, but is not forwarded.
func (n *Node) passOn(from *conn, news []eventlog.PeerInfo) {
	msg := wire.PeersMsg{Peers: make([]wire.PeerEntry, 0, len(news))}
	for _, p := range news {
		if !n.passOnLimit.Allow() {
			break
		}
		msg.Peers = append(msg.Peers, wire.PeerEntry{ID: p.ID, Name: p.Name, Addrs: n.reach.visible(p.Addrs)})
	}
	if len(msg.Peers) == 0 {
		return
	}
	frame, err := wire.EncodeFrame(wire.FramePeers, msg, n.cfg.MaxFrame)
	if err != nil {
		n.logger.Error().Err(err).Msg("encode PEERS")
		return
	}
	n.broadcast(frame, from)
}

// The node-wide bound on PEERS entries passed on: enough for names to cross
// a mesh of thousands within a minute, little beside a neighbour's gossip
// budget.
const (
	passOnRate  = 50
	passOnBurst = 1000
)
