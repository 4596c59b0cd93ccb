package peering

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// What the chat commands do. Names are labels, not identities: every
// command that takes a name resolves it to one node ID first, and refuses
// a name that fits several.

// Resolve turns what a person typed into a node ID: a name, name#shortid,
// or an ID in its full or short form. An ambiguous name is refused with
// the candidates listed.
func (n *Node) Resolve(ref string) (eventlog.NodeID, error) {
	table, err := n.log.Peers()
	if err != nil {
		return eventlog.NodeID{}, err
	}
	// This node is a candidate like any other: a peer sharing its name
	// makes the name ambiguous, not a reference to itself.
	table = append(table, eventlog.Peer{ID: n.self, Name: n.Name()})
	name, short, hasShort := strings.Cut(ref, "#")
	var byName, byID []eventlog.Peer
	for _, p := range table {
		id := p.ID.String()
		switch {
		case hasShort:
			if p.Name == name && short != "" && strings.HasPrefix(id, strings.ToLower(short)) {
				byName = append(byName, p)
			}
		case p.Name == ref:
			byName = append(byName, p)
		case len(ref) >= 8 && strings.HasPrefix(id, strings.ToLower(ref)):
			byID = append(byID, p)
		}
	}
	candidates := byName
	if len(candidates) == 0 {
		candidates = byID
	}
	switch len(candidates) {
	case 0:
		return eventlog.NodeID{}, fmt.Errorf("no known peer is called %s", ref)
	case 1:
		return candidates[0].ID, nil
	}
	labels := make([]string, len(candidates))
	for i, p := range candidates {
		labels[i] = p.Name + "#" + p.ID.Short()
	}
	slices.Sort(labels)
	return eventlog.NodeID{}, fmt.Errorf("%s is ambiguous: %s", ref, strings.Join(labels, ", "))
}

// resolveOther resolves ref and refuses this node itself.
func (n *Node) resolveOther(ref, action string) (eventlog.NodeID, error) {
	id, err := n.Resolve(ref)
	if err == nil && id == n.self {
		err = fmt.Errorf("cannot %s yourself", action)
	}
	return id, err
}

// Nick renames this node. The rename is signed and travels like a chat
// line, so every peer (also those offline now, through catch-up) learns it.
func (n *Node) Nick(ctx context.Context, name string) error {
	if err := eventlog.CheckName(name); err != nil {
		return err
	}
	if name == n.Name() {
		return fmt.Errorf("you are %s already", name)
	}
	return n.enqueue(ctx, eventlog.Nick{Name: name})
}

// Kick disconnects a peer and bans it for good.
func (n *Node) Kick(ctx context.Context, ref string) error {
	return n.ban(ctx, ref, 0, "kick", "kicked")
}

// Ban refuses a peer for d, or for good when d is 0: its connections are
// refused, it is not dialed, and its lines are neither shown nor relayed.
func (n *Node) Ban(ctx context.Context, ref string, d time.Duration) error {
	return n.ban(ctx, ref, d, "ban", "banned")
}

func (n *Node) ban(ctx context.Context, ref string, d time.Duration, verb, how string) error {
	if d < 0 {
		return errors.New("ban duration must be positive")
	}
	id, err := n.resolveOther(ref, verb)
	if err != nil {
		return err
	}
	var until time.Time
	if d > 0 {
		until = time.Now().Add(d).Round(time.Second)
	}
	if _, err := n.log.Append(ctx, eventlog.Ban{ID: id, Until: until, Reason: how}); err != nil {
		return fmt.Errorf("store ban: %w", err)
	}
	n.mu.Lock()
	n.banned[id] = until
	c := n.conns[id]
	n.mu.Unlock()
	n.peersChanged()
	if c != nil {
		c.close(errBanned)
	}
	what := how + " for good"
	if !until.IsZero() {
		what = fmt.Sprintf("%s until %s", how, until.Local().Format(time.DateTime))
	}
	n.display.ShowSystem(fmt.Sprintf("%s %s", ref, what))
	return nil
}

// Unban lifts a ban; the peer is dialed again if its address is known.
func (n *Node) Unban(ctx context.Context, ref string) error {
	id, err := n.resolveOther(ref, "unban")
	if err != nil {
		return err
	}
	if !n.isBanned(id) {
		return fmt.Errorf("%s is not banned", ref)
	}
	if _, err := n.log.Append(ctx, eventlog.Unban{ID: id}); err != nil {
		return fmt.Errorf("store unban: %w", err)
	}
	n.mu.Lock()
	delete(n.banned, id)
	n.mu.Unlock()
	n.peersChanged()
	if p, ok, err := n.log.Peer(id); err == nil && ok {
		n.learn(id, p.Addrs)
	}
	n.display.ShowSystem(ref + " is no longer banned")
	return nil
}

// Ban is one ban in force.
type Ban struct {
	ID     eventlog.NodeID
	Name   string
	Until  time.Time // zero: for good
	Reason string
}

// Bans lists the bans in force.
func (n *Node) Bans() ([]Ban, error) {
	table, err := n.log.Peers()
	if err != nil {
		return nil, err
	}
	var out []Ban
	now := time.Now()
	for _, p := range table {
		if p.BannedAt(now) {
			out = append(out, Ban{ID: p.ID, Name: p.Name, Until: p.BannedUntil, Reason: p.BanReason})
		}
	}
	return out, nil
}

// Connect dials an address now, as --peer does at start.
func (n *Node) Connect(ctx context.Context, addr string) error {
	if err := CheckAddr(addr); err != nil {
		return err
	}
	n.mu.Lock()
	n.dialNowLocked(addr)
	n.mu.Unlock()
	n.poke()
	n.display.ShowSystem("dialing " + addr)
	return nil
}

// KnownPeer is one row of the peer table with whether it is connected.
type KnownPeer struct {
	eventlog.Peer
	Connected bool
}

// KnownPeers lists every peer in the table, connected or not.
func (n *Node) KnownPeers() ([]KnownPeer, error) {
	table, err := n.log.Peers()
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	out := make([]KnownPeer, len(table))
	for i, p := range table {
		out[i] = KnownPeer{Peer: p, Connected: n.conns[p.ID] != nil}
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b KnownPeer) int { return strings.Compare(a.Name+a.ID.String(), b.Name+b.ID.String()) })
	return out, nil
}

// Names are the names of the connected peers, for completion.
func (n *Node) Names() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.conns))
	for _, c := range n.conns {
		out = append(out, c.name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
