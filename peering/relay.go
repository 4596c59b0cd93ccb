package peering

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/p2pchat/p2pchat/eventlog"
)

// onChat handles a CHAT frame: verify, append once, show, relay. The frame
// is relayed as received, byte for byte, so relaying costs no re-encoding
// and a signature can never be disturbed by it.
func (n *Node) onChat(ctx context.Context, from *conn, payload []byte) error {
	var msg ChatMsg
	if err := json.Unmarshal(payload, &msg); err != nil {
		return fmt.Errorf("CHAT: %w", err)
	}
	chat := msg.Event()
	if err := chat.Verify(); err != nil {
		return fmt.Errorf("CHAT from origin %s seq %d: %w", chat.Origin.Short(), chat.OriginSeq, err)
	}
	if n.isBanned(chat.Origin) {
		return nil // neither shown nor relayed
	}
	res, err := n.log.Append(ctx, chat)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("append CHAT: %w", err)
	}
	if res[0].Duplicate {
		return nil
	}
	n.display.ShowChat(chat.OriginTime, n.label(chat.Origin, chat.Name), chat.Text)
	frame := make([]byte, 0, len(FrameChat)+len(payload)+2)
	frame = append(frame, FrameChat...)
	frame = append(frame, '|')
	frame = append(frame, payload...)
	frame = append(frame, '\n')
	n.broadcast(frame, from)
	return nil
}

// onPeers handles a PEERS frame: record what is new and dial whom this
// node is not connected to.
func (n *Node) onPeers(ctx context.Context, from *conn, payload []byte) error {
	var msg PeersMsg
	if err := json.Unmarshal(payload, &msg); err != nil {
		return fmt.Errorf("PEERS: %w", err)
	}
	if err := msg.Validate(maxPeersEntries, maxAddrsPerPeer); err != nil {
		return fmt.Errorf("PEERS: %w", err)
	}
	table, err := n.log.Peers()
	if err != nil {
		return fmt.Errorf("read peer table: %w", err)
	}
	known := make(map[eventlog.NodeID]eventlog.Peer, len(table))
	for _, p := range table {
		known[p.ID] = p
	}
	var news []eventlog.PeerInfo
	for _, e := range msg.Peers {
		if e.ID == n.self || e.ID == from.id {
			continue
		}
		p, ok := known[e.ID]
		if ok && !addsAddrs(p.Addrs, e.Addrs) {
			continue
		}
		news = append(news, eventlog.PeerInfo{ID: e.ID, Name: e.Name, Addrs: e.Addrs})
	}
	// Only what is new is worth an event: PEERS repeats itself on every
	// connection, and the log keeps everything forever.
	if len(news) > 0 {
		if _, err := n.log.Append(ctx, eventlog.Peers{From: from.id, Peers: news}); err != nil {
			return fmt.Errorf("append PEERS: %w", err)
		}
	}
	for _, e := range msg.Peers {
		if e.ID != n.self && e.ID != from.id {
			n.learn(e.ID, e.Addrs)
		}
	}
	return nil
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
