package peering

import (
	"context"
	"net"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/lan"
)

// discoverLAN runs LAN discovery until ctx ends. A node that listens on
// loopback only does not advertise: nobody on the LAN could reach it.
func (n *Node) discoverLAN(ctx context.Context) {
	defer n.wg.Done()
	tcp, _ := n.ln.Addr().(*net.TCPAddr)
	err := lan.Run(ctx, lan.Config{
		ID:         n.self.String(),
		Port:       n.Port(),
		Advertise:  tcp != nil && !tcp.IP.IsLoopback(),
		NetworkKey: n.cfg.NetworkKey,
		Found:      n.discovered,
		Logger:     n.logger,
	})
	if err != nil {
		n.logger.Warn().Err(err).Msg("LAN discovery stopped")
	}
}

// maxLANSeeds bounds the addresses without an ID that the dialer holds.
// On a private network the LAN record carries only the network's tag,
// which anyone on the LAN can copy into records of their own: the bound
// keeps such records from growing the dialer's work.
const maxLANSeeds = 64

// discovered hands a node found on the LAN to the dialer. A node whose ID
// the advertisement names is dialed like one heard of in PEERS; on a
// private network, where it names none, its address is dialed like a
// --peer, unless it is a connected peer's or this node's. Unlike --peer, a
// target that exists already keeps its backoff: the same advertisement is
// heard again every round.
func (n *Node) discovered(p lan.Peer) {
	if p.ID != "" {
		id, err := eventlog.ParseNodeID(p.ID)
		if err != nil {
			return
		}
		n.learn(id, []string{p.Addr})
		return
	}
	n.mu.Lock()
	added := false
	if !n.selfAddrs[p.Addr] && !n.connectedAtLocked(p.Addr) && n.targetAtLocked(p.Addr) == nil && n.seedsLocked() < maxLANSeeds {
		n.targets["seed "+p.Addr] = &target{key: "seed " + p.Addr, addrs: []string{p.Addr}}
		added = true
	}
	n.mu.Unlock()
	if added {
		n.poke()
	}
}

// seedsLocked counts the targets whose ID is not known yet.
func (n *Node) seedsLocked() int {
	seeds := 0
	for _, t := range n.targets {
		if t.id.IsZero() {
			seeds++
		}
	}
	return seeds
}
