package peering

import "github.com/p2pchat/p2pchat/eventlog"

// passOn forwards to the other peers the entries of a PEERS that were news
// to this node. Each node forwards an entry only the first time it learns
// it (or learns a new address of it), so news of a node crosses the whole
// mesh, once per connection, and then stops. Without it a node learns only
// of its neighbours' neighbours, and cannot name, to send a private
// message, a node further away.
func (n *Node) passOn(from *conn, news []eventlog.PeerInfo) {
	msg := PeersMsg{Peers: make([]PeerEntry, len(news))}
	for i, p := range news {
		msg.Peers[i] = PeerEntry{ID: p.ID, Name: p.Name, Addrs: n.reach.visible(p.Addrs)}
	}
	frame, err := EncodeFrame(FramePeers, msg, n.cfg.MaxFrame)
	if err != nil {
		n.logger.Error().Err(err).Msg("encode PEERS")
		return
	}
	n.broadcast(frame, from)
}
