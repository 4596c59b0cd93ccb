package peering

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Names are labels, not identities, and a peer may pick one that looks
// like another's. A node is therefore shown as name#shortid whenever any
// other node it knows of (connected, known from the peer table, shown as
// the author of a line before, or this node itself) has a name with the
// same eventlog.Skeleton: the same name, or one that only looks the same.

// knownNamesTTL is how long the skeletons of the peer table are reused
// before they are read again. Labels are drawn for every line shown, a
// catch-up shows thousands at once, and the table holds up to 10,000
// peers; connected peers and this node are compared live, so the window
// only concerns two nodes neither of which is connected and both of which
// were learned within it (or while the table was read again: see
// knownNames.others).
const knownNamesTTL = time.Second

// knownNames caches, per skeleton, the IDs of the peer table that have
// it, and the skeletons of the names seen lately: a label compares the
// name with every connected peer's, for every line shown.
type knownNames struct {
	mu     sync.Mutex
	read   time.Time // when the table behind byName was read
	byName map[string][]eventlog.NodeID
	skels  map[string]string // name → eventlog.Skeleton(name)
	// authors holds, per skeleton, the nodes whose lines were shown under
	// it: an author known only from relayed lines is in no peer table.
	authors map[string][]eventlog.NodeID
	// stale asks the node's namesLoop to read the table again; nil (no
	// loop) leaves the copy as it is.
	stale chan struct{}
}

// maxAuthorsPerName bounds the IDs remembered under one skeleton; two are
// enough to know that a name clashes.
const maxAuthorsPerName = 8

// shown records that id was shown under skel and reports whether another
// node was shown under it before.
func (k *knownNames) shown(id eventlog.NodeID, skel string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	ids := k.authors[skel]
	clash := false
	for _, other := range ids {
		if other != id {
			clash = true
		}
	}
	if slices.Contains(ids, id) || len(ids) >= maxAuthorsPerName {
		return clash
	}
	if k.authors == nil || len(k.authors) >= maxSkeletons {
		k.authors = make(map[string][]eventlog.NodeID)
	}
	k.authors[skel] = append(ids, id)
	return clash
}

// maxSkeletons bounds the memo of skeletons; it starts over when full.
const maxSkeletons = 4096

// skeleton is eventlog.Skeleton(name), memoized.
func (k *knownNames) skeleton(name string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.skeletonLocked(name)
}

func (k *knownNames) skeletonLocked(name string) string {
	if s, ok := k.skels[name]; ok {
		return s
	}
	if k.skels == nil || len(k.skels) >= maxSkeletons {
		k.skels = make(map[string]string)
	}
	s := eventlog.Skeleton(name)
	k.skels[name] = s
	return s
}

// others reports whether a node other than id is known under skel. Only
// the first label waits for the peer table; after that a copy older than
// knownNamesTTL is still used while namesLoop reads the table again. A
// label is drawn on the way of a line from the connection that brought it
// to the screen, and of a new peer to the list of those connected, and a
// table of 10,000 rows took seconds to read on a crowded machine.
func (k *knownNames) others(log Log, id eventlog.NodeID, skel string) bool {
	k.mu.Lock()
	first := k.byName == nil
	k.mu.Unlock()
	if first {
		k.load(log)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byName != nil && time.Since(k.read) > knownNamesTTL {
		select {
		case k.stale <- struct{}{}:
		default: // asked already
		}
	}
	for _, other := range k.byName[skel] {
		if other != id {
			return true
		}
	}
	return false
}

// fresh reports whether the copy of the table is younger than
// knownNamesTTL.
func (k *knownNames) fresh() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.byName != nil && time.Since(k.read) <= knownNamesTTL
}

// load reads the peer table's names. The read runs without k.mu, so that
// labels are drawn from the last copy meanwhile. Without the table the
// last copy stays; without any, labels fall back to what is compared
// live.
func (k *knownNames) load(log Log) {
	read := time.Now()
	peers, err := log.Peers()
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	byName := make(map[string][]eventlog.NodeID, len(peers))
	for _, p := range peers {
		s := k.skeletonLocked(p.Name)
		byName[s] = append(byName[s], p.ID)
	}
	if read.After(k.read) {
		k.byName, k.read = byName, read
	}
}

// namesLoop reads the peer table for labels when one found its copy
// stale (knownNames.others).
func (n *Node) namesLoop(ctx context.Context) {
	defer n.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.names.stale:
			// Asked again while the last read was under way: that
			// read is fresh enough.
			if !n.names.fresh() {
				n.names.load(n.log)
			}
		}
	}
}

// label is how a node is named on screen: its name, or name#shortid when
// another node known here has the same or a look-alike name.
func (n *Node) label(id eventlog.NodeID, name string) string {
	skel := n.names.skeleton(name)
	// n.names.mu is taken inside n.mu here and never the other way round.
	n.mu.Lock()
	clash := id != n.self && n.names.skeleton(n.name) == skel
	for other, c := range n.conns {
		if clash {
			break
		}
		clash = other != id && n.names.skeleton(c.name) == skel
	}
	n.mu.Unlock()
	if n.names.shown(id, skel) {
		clash = true
	}
	if clash || n.names.others(n.log, id, skel) {
		return name + "#" + id.Short()
	}
	return name
}
