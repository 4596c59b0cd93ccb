package peering

import (
	"context"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

func TestTwoAuthorsShownUnderLookAlikeNamesClash(t *testing.T) {
	var k knownNames
	alice, fake := eventlog.NodeID{1}, eventlog.NodeID{2}
	if k.shown(alice, k.skeleton("Alice")) {
		t.Fatal("the first author of a name clashes with nobody")
	}
	if k.shown(alice, k.skeleton("Alice")) {
		t.Fatal("an author does not clash with itself")
	}
	if !k.shown(fake, k.skeleton("\u0410lice")) {
		t.Error("a second author under a look-alike name does not clash")
	}
	if !k.shown(alice, k.skeleton("Alice")) {
		t.Error("once a look-alike was shown, the first author clashes too")
	}
	if k.shown(eventlog.NodeID{3}, k.skeleton("Bob")) {
		t.Error("Bob clashes with the Alices")
	}
}

// TestALabelDrawnFromAStaleTableDoesNotWaitForTheTable: once the copy of
// the peer table is older than knownNamesTTL, a label is still drawn from
// it, and the table is read again apart (namesLoop), since a large table
// takes seconds to read and labels are drawn for every line shown.
func TestALabelDrawnFromAStaleTableDoesNotWaitForTheTable(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	from, bob, fake := eventlog.NodeID{1}, eventlog.NodeID{2}, eventlog.NodeID{3}
	addPeer := func(id eventlog.NodeID, name string) {
		t.Helper()
		_, err := lg.Append(context.Background(), eventlog.Peers{From: from, Peers: []eventlog.PeerInfo{{ID: id, Name: name, Addrs: []string{"127.0.0.1:1"}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	addPeer(bob, "Bob")
	k := knownNames{stale: make(chan struct{}, 1)}
	skel := k.skeleton("Bob")
	if k.others(lg, bob, skel) {
		t.Fatal("Bob clashes with himself")
	}
	// A look-alike joins the table; the copy, read once, goes stale.
	addPeer(fake, "B\u043eb")
	k.mu.Lock()
	k.read = k.read.Add(-2 * knownNamesTTL)
	k.mu.Unlock()
	if k.others(lg, bob, skel) {
		t.Error("a stale copy was read again while a label was drawn")
	}
	select {
	case <-k.stale:
	default:
		t.Fatal("a stale copy was not sent to be read again")
	}
	k.load(lg)
	if !k.others(lg, bob, skel) {
		t.Error("once read again, the table's look-alike of Bob does not clash")
	}
	select {
	case <-k.stale:
		t.Error("a fresh copy was sent to be read again")
	default:
	}
}
