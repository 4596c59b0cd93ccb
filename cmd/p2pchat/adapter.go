package main

import (
	"context"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering"
	"github.com/p2pchat/p2pchat/repl"
	"github.com/p2pchat/p2pchat/store"
)

// chatNode presents a peering.Node to the REPL in the REPL's own terms;
// it converts types and remembers a rename in the store, nothing more.
type chatNode struct {
	*peering.Node
	log *eventlog.Log
	st  *store.Store
}

func (n chatNode) Users() []repl.User {
	users := n.Node.Users()
	out := make([]repl.User, len(users))
	for i, u := range users {
		out[i] = repl.User{Name: u.Name, ID: u.ID, Addr: u.Addr, Since: u.Since}
	}
	return out
}

func (n chatNode) Nick(ctx context.Context, name string) error {
	if err := n.Node.Nick(ctx, name); err != nil {
		return err
	}
	return n.st.SetName(name)
}

func (n chatNode) Bans() ([]repl.BanEntry, error) {
	bans, err := n.Node.Bans()
	out := make([]repl.BanEntry, len(bans))
	for i, b := range bans {
		out[i] = repl.BanEntry{Name: b.Name, ID: b.ID, Until: b.Until, Reason: b.Reason}
	}
	return out, err
}

func (n chatNode) KnownPeers() ([]repl.KnownPeer, error) {
	peers, err := n.Node.KnownPeers()
	now := time.Now()
	out := make([]repl.KnownPeer, len(peers))
	for i, p := range peers {
		out[i] = knownPeer(p.Peer, p.Connected, now)
	}
	return out, err
}

// knownPeer is a row of the peer table in the REPL's terms, for /peers and
// `p2pchat peers` alike.
func knownPeer(p eventlog.Peer, connected bool, now time.Time) repl.KnownPeer {
	return repl.KnownPeer{Name: p.Name, ID: p.ID, Addrs: p.Addrs, Connected: connected,
		LastSeen: p.LastSeen, Banned: p.BannedAt(now), DialFailures: p.DialFailures}
}

func (n chatNode) History(count int) ([]repl.HistoryLine, error) {
	events, err := n.log.LastLines(count)
	return toHistoryLines(n.log, events), err
}

// The REPL finds these by type assertion; a signature drifting apart would
// silently turn a command into "not available".
var _ interface {
	repl.Node
	repl.Renamer
	repl.Messenger
	repl.Moderator
	repl.Historian
	repl.Connector
	repl.Directory
	repl.Completer
	repl.Reacher
} = chatNode{}
