package peering

import (
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
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
