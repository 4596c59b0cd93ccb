package peering

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestADialedNodeTellsTheDialerItCanReachIt(t *testing.T) {
	a := netTestStart(t, "Alice", nil)
	b := netTestStart(t, "Bob", netTestSeeds(a))
	netTestWaitFor(t, 10*time.Second, "Bob hears that Alice can dial him", func() bool {
		return b.display.sawSystem("Alice sees this node at 127.0.0.1:") && b.Reach()["127.0.0.1:"+portOf(b)]
	})
	if !b.display.sawSystem("Alice sees this node at 127.0.0.1:" + portOf(b) + " and can dial it there") {
		t.Error("Bob does not show that Alice can dial him at his own port")
	}
	// The dial-back is no failed handshake to Bob.
	if lines := b.logs.lines("handshake failed"); len(lines) > 0 {
		t.Errorf("Bob logs the dial-back as a failed handshake: %v", lines)
	}
}

func portOf(tn *netTestNode) string {
	_, port, _ := strings.Cut(tn.Addr().String(), "127.0.0.1:")
	return port
}

// A peer behind NAT is what the node sees as an address that refuses: here
// a JOIN naming port 9, where nothing listens.
func TestAPeerThatCannotBeDialedBackIsNamedWithoutItsAddress(t *testing.T) {
	a := netTestStart(t, "Alice", nil)
	p, _ := malloryJoins(t, a)
	var reach ReachMsg
	for deadline := time.Now().Add(10 * time.Second); ; {
		typ, payload, err := p.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("no REACH: %v", err)
		}
		if typ == FrameReach {
			if err := json.Unmarshal(payload, &reach); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if reach != (ReachMsg{Addr: "127.0.0.1:9", Reachable: false}) {
		t.Errorf("REACH %+v, want 127.0.0.1:9 unreachable", reach)
	}

	c := netTestStart(t, "Carol", netTestSeeds(a))
	netTestWaitFor(t, 10*time.Second, "Carol knows of Mallory through Alice", func() bool { return c.knows(t, p.id) })
	row, _, err := c.log.Peer(p.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(row.Addrs) != 0 {
		t.Errorf("Carol was handed Mallory's addresses %v, which Alice found unreachable", row.Addrs)
	}
	if msg, err := a.peersMsg(); err != nil || slices.ContainsFunc(msg.Peers, func(e PeerEntry) bool { return e.ID == p.id && len(e.Addrs) > 0 }) {
		t.Errorf("Alice's PEERS %+v, %v: lists Mallory with an address", msg, err)
	}

	// Only the side that accepted a connection dials back and says so.
	if err := p.write(FrameReach, ReachMsg{Addr: "192.0.2.1:1", Reachable: true}); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice drops the peer that sent REACH", func() bool {
		return a.logs.has("penalized peer", "unasked REACH")
	})
}
