package peering

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/store"
)

// privateLines returns what d showed as private messages.
func (d *netTestDisplay) privateLines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.private)
}

func (d *netTestDisplay) sawSystem(prefix string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.ContainsFunc(d.system, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// storedBytes returns every stored event of tn, encoded as on disk.
func (tn *netTestNode) storedBytes(t *testing.T) ([]byte, map[eventlog.Type]int) {
	t.Helper()
	var all []byte
	types := map[eventlog.Type]int{}
	err := tn.log.Scan(context.Background(), 1, func(e eventlog.Event) error {
		data, err := eventlog.Encode(e)
		all = append(all, data...)
		types[e.Body.Type()]++
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all, types
}

func TestPrivateMessageCrossesARelayUnreadAndComesBackDelivered(t *testing.T) {
	maxPeers := func(n int) func(*Config) { return func(c *Config) { c.MaxPeers = n } }
	a := netTestStart(t, "Alice", maxPeers(1))
	b := netTestStart(t, "Bob", func(c *Config) { maxPeers(2)(c); netTestSeeds(a)(c) })
	c := netTestStart(t, "Carol", func(cfg *Config) { maxPeers(1)(cfg); netTestSeeds(b)(cfg) })
	netTestWaitFor(t, 10*time.Second, "Alice and Carol know of each other through Bob", func() bool {
		return a.knows(t, c.ID()) && c.knows(t, a.ID()) && b.connectedTo(a) && b.connectedTo(c)
	})
	if a.connectedTo(c) {
		t.Fatal("Alice and Carol are connected directly; the test needs Bob between them")
	}

	const secret = "the eagle lands at noon"
	if err := a.Msg(context.Background(), "Carol", secret); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Carol shows Alice's message", func() bool {
		return slices.Contains(c.display.privateLines(), "<Alice> "+secret)
	})
	netTestWaitFor(t, 10*time.Second, "Alice sees it delivered", func() bool {
		return a.display.sawSystem("delivered to Carol: " + secret)
	})
	if err := c.Msg(context.Background(), "Alice", "roger"); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice shows Carol's answer", func() bool {
		return slices.Contains(a.display.privateLines(), "<Carol> roger")
	})
	netTestWaitFor(t, 10*time.Second, "Bob holds both messages and both acks", func() bool {
		_, types := b.storedBytes(t)
		return types[eventlog.TypeSealed] == 2 && types[eventlog.TypeAck] == 2
	})
	stored, _ := b.storedBytes(t)
	if bytes.Contains(stored, []byte(secret)) || bytes.Contains(stored, []byte("roger")) {
		t.Error("Bob's log holds the text of a private message")
	}
	if got := b.display.privateLines(); len(got) != 0 {
		t.Errorf("Bob shows private messages %q", got)
	}
}

// mallory is a hand-driven peer that signs what it likes.
func malloryJoins(t *testing.T, n *netTestNode) (*netTestPeer, ed25519.PrivateKey) {
	t.Helper()
	key, _ := netTestNewKey(t)
	p := netTestDialTLS(t, n.Addr().String(), key)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := p.next(5 * time.Second); err != nil || typ != wire.FrameJoin {
		t.Fatalf("first frame %q, %v; want JOIN", typ, err)
	}
	return p, key
}

func sealedBy(t *testing.T, key ed25519.PrivateKey, to eventlog.NodeID, seq uint64, text string, spoil func(*eventlog.Sealed)) wire.SealedMsg {
	t.Helper()
	s, err := eventlog.NewSealed(key, to, "Mallory", text)
	if err != nil {
		t.Fatal(err)
	}
	if spoil != nil {
		spoil(&s)
	}
	s.OriginSeq, s.OriginTime = seq, time.Now()
	s.Sign(key)
	return wire.SealedFromEvent(s)
}

func TestUnreadablePrivateMessagesAreNeverShown(t *testing.T) {
	bob := netTestStart(t, "Bob", nil)
	aliceKey, _ := netTestNewKey(t)
	_, carol := netTestNewKey(t)
	p, mallory := malloryJoins(t, bob)

	// Each is signed by Mallory, so Bob stores and relays it in her
	// sequence, but none opens for Bob.
	spoiled := []wire.SealedMsg{
		// Alice's box to Bob, lifted into Mallory's message.
		sealedBy(t, mallory, bob.ID(), 1, "decoy", func(s *eventlog.Sealed) {
			alices, err := eventlog.NewSealed(aliceKey, bob.ID(), "Alice", "lifted")
			if err != nil {
				t.Fatal(err)
			}
			s.Box = alices.Box
		}),
		// Altered on the way, then signed.
		sealedBy(t, mallory, bob.ID(), 2, "altered", func(s *eventlog.Sealed) { s.Box[len(s.Box)-1] ^= 1 }),
		// Sealed to Carol, addressed to Bob.
		sealedBy(t, mallory, carol, 3, "for carol", func(s *eventlog.Sealed) { s.To = bob.ID() }),
	}
	for _, m := range spoiled {
		if err := p.write(wire.FrameSealed, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.write(wire.FrameSealed, sealedBy(t, mallory, bob.ID(), 4, "readable", nil)); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Bob shows the readable message", func() bool {
		return len(bob.display.privateLines()) > 0
	})
	if got := bob.display.privateLines(); !slices.Equal(got, []string{"<Mallory> readable"}) {
		t.Errorf("Bob shows %q, want only the readable message", got)
	}
	if _, types := bob.storedBytes(t); types[eventlog.TypeSealed] != 4 {
		t.Errorf("Bob stored %d sealed messages, want all 4 (they are Mallory's, signed)", types[eventlog.TypeSealed])
	}

	// A message claiming Alice as its sender, signed by Mallory: refused,
	// and the connection that brought it ends.
	forged := sealedBy(t, mallory, bob.ID(), 1, "from alice, honest", nil)
	copy(forged.Origin[:], aliceKey.Public().(ed25519.PublicKey))
	if err := p.write(wire.FrameSealed, forged); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Bob drops the forger", func() bool {
		return bob.logs.has("penalized peer", "bad signature")
	})
	if got := bob.display.privateLines(); len(got) != 1 {
		t.Errorf("Bob shows %q after the forgery", got)
	}
}

// TestAPrivateMessageWhoseAckAStopLostIsAcknowledgedAtTheNextStart: Bob's
// node stored Alice's message and stopped before it stored its Ack (a
// crash, or the message came while it was shutting down). The message is
// a copy of a held one from then on; Bob's next start acknowledges it,
// and the one after does not again.
func TestAPrivateMessageWhoseAckAStopLostIsAcknowledgedAtTheNextStart(t *testing.T) {
	bobDir := t.TempDir()
	bob := netTestStartIn(t, bobDir, "Bob", nil)
	alice := netTestStart(t, "Alice", netTestSeeds(bob))
	netTestWaitFor(t, 5*time.Second, "Alice and Bob connected", func() bool { return alice.connectedTo(bob) && bob.connectedTo(alice) })
	bob.stop()
	bob.log.Close()
	bob.st.Close()

	const text = "stored, never acknowledged"
	if err := alice.Msg(context.Background(), "Bob", text); err != nil {
		t.Fatal(err)
	}
	var sealed eventlog.Sealed
	netTestWaitFor(t, 5*time.Second, "Alice holding her message", func() bool {
		events, err := alice.log.ByOrigin(alice.ID(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if s, ok := e.Body.(eventlog.Sealed); ok {
				sealed = s
				return true
			}
		}
		return false
	})
	// What Bob's node had done when it stopped: the message stored, its
	// Ack not.
	st, err := store.Open(bobDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lg.Append(context.Background(), sealed); err != nil {
		t.Fatal(err)
	}
	lg.Close()
	st.Close()

	ownAcks := func(n *netTestNode) int {
		events, err := n.log.ByOrigin(n.ID(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		acks := 0
		for _, e := range events {
			if a, ok := e.Body.(eventlog.Ack); ok && a.To == alice.ID() && a.Ref == sealed.OriginSeq {
				acks++
			}
		}
		return acks
	}
	bob = netTestStartIn(t, bobDir, "Bob", netTestSeeds(alice))
	netTestWaitFor(t, 10*time.Second, "Alice sees her message delivered", func() bool {
		return alice.display.sawSystem("delivered to Bob: " + text)
	})
	if n := ownAcks(bob); n != 1 {
		t.Fatalf("Bob holds %d Acks of the message, want 1", n)
	}
	bob.stop()
	bob.log.Close()
	bob.st.Close()

	bob = netTestStartIn(t, bobDir, "Bob", netTestSeeds(alice))
	netTestWaitFor(t, 5*time.Second, "Bob connected again", func() bool { return bob.connectedTo(alice) })
	// Queued after anything the start queued.
	bob.say(t, "back again")
	netTestWaitFor(t, 5*time.Second, "Bob's line stored", func() bool { return bob.display.saw("back again") })
	if n := ownAcks(bob); n != 1 {
		t.Errorf("after another start Bob holds %d Acks of the message, want 1", n)
	}
}
