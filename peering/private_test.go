package peering

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
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
	const text = "stored, never acknowledged"
	alice, bobDir, sealed := lostAckTestSetup(t, text, "")
	bob := netTestStartIn(t, bobDir, "Bob", netTestSeeds(alice))
	netTestWaitFor(t, 10*time.Second, "Alice sees her message delivered", func() bool {
		return alice.display.sawSystem("delivered to Bob: " + text)
	})
	if n := privateTestAcks(t, bob, alice.ID(), sealed.OriginSeq); n != 1 {
		t.Fatalf("Bob holds %d Acks of the message, want 1", n)
	}
	bob.stop()
	bob.log.Close()
	bob.st.Close()

	bob = netTestStartIn(t, bobDir, "Bob", netTestSeeds(alice))
	bob.waitLookedForUnacknowledged(t)
	bob.say(t, "back again") // queued after anything the start queued
	netTestWaitFor(t, 5*time.Second, "Bob's line stored", func() bool { return bob.display.saw("back again") })
	if n := privateTestAcks(t, bob, alice.ID(), sealed.OriginSeq); n != 1 {
		t.Errorf("after another start Bob holds %d Acks of the message, want 1", n)
	}
}

// waitLookedForUnacknowledged waits until tn's start has queued the
// acknowledgements a stop lost (ackMissed), if any.
func (tn *netTestNode) waitLookedForUnacknowledged(t *testing.T) {
	t.Helper()
	netTestWaitFor(t, 10*time.Second, tn.Name()+" looking for unacknowledged messages", func() bool {
		return len(tn.logs.lines("looked for private messages a stop left unacknowledged")) > 0
	})
}

// TestARestoredNodeDoesNotAcknowledgeTwice: a message came while Bob's
// node was stopping (stored, no Ack), and his stopped data directory was
// backed up. His next start acknowledges it. Restored from that backup
// later, the node finds the message unacknowledged in its own copy, but
// the first catch-up brings back the Ack it sent: it does not send
// another, and Alice is told once that it was delivered.
func TestARestoredNodeDoesNotAcknowledgeTwice(t *testing.T) {
	const text = "came while stopping"
	backup := t.TempDir()
	alice, bobDir, sealed := lostAckTestSetup(t, text, backup)
	bob := netTestStartIn(t, bobDir, "Bob", netTestSeeds(alice))
	delivered := func() int { return len(alice.display.systemWith("delivered to Bob: " + text)) }
	netTestWaitFor(t, 10*time.Second, "Alice told of the delivery", func() bool { return delivered() == 1 })
	bob.stop()
	bob.log.Close()
	bob.st.Close()

	restored := netTestStartIn(t, backup, "Bob", netTestSeeds(alice))
	restored.waitLookedForUnacknowledged(t)
	restored.say(t, "back from the backup") // queued after anything the start queued
	netTestWaitFor(t, 15*time.Second, "Alice showing the restored node's line", func() bool { return alice.display.saw("back from the backup") })
	if n := privateTestAcks(t, restored, alice.ID(), sealed.OriginSeq); n != 1 || delivered() != 1 {
		t.Errorf("the restored node holds %d Acks of the message, and Alice was told %d times it was delivered; want 1 and 1", n, delivered())
	}
}

// privateTestSealed waits until tn holds a private message of its own and
// returns it.
func privateTestSealed(t *testing.T, tn *netTestNode) eventlog.Sealed {
	t.Helper()
	var sealed eventlog.Sealed
	netTestWaitFor(t, 5*time.Second, tn.Name()+" holding its private message", func() bool {
		events, err := tn.log.ByOrigin(tn.ID(), 0, 100)
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
	return sealed
}

// privateTestAcks counts tn's own Acks of message ref of to.
func privateTestAcks(t *testing.T, tn *netTestNode, to eventlog.NodeID, ref uint64) int {
	t.Helper()
	events, err := tn.log.ByOrigin(tn.ID(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	acks := 0
	for _, e := range events {
		if a, ok := e.Body.(eventlog.Ack); ok && a.To == to && a.Ref == ref {
			acks++
		}
	}
	return acks
}

// lostAckTestSetup has Alice send Bob a private message while his node is
// stopped, and then stores it in Bob's log without an Ack, as his node
// would have left it had it stopped between the two. If backup is not
// empty, it copies Bob's stopped data directory there. It returns Alice's
// running node, Bob's data directory and the message.
func lostAckTestSetup(t *testing.T, text, backup string) (alice *netTestNode, bobDir string, sealed eventlog.Sealed) {
	t.Helper()
	bobDir = t.TempDir()
	bob := netTestStartIn(t, bobDir, "Bob", nil)
	alice = netTestStart(t, "Alice", netTestSeeds(bob))
	netTestWaitFor(t, 5*time.Second, "Alice and Bob connected", func() bool { return alice.connectedTo(bob) && bob.connectedTo(alice) })
	bob.stop()
	bob.log.Close()
	bob.st.Close()

	if err := alice.Msg(t.Context(), "Bob", text); err != nil {
		t.Fatal(err)
	}
	sealed = privateTestSealed(t, alice)
	st, err := store.Open(bobDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lg.Append(t.Context(), sealed)
	lg.Close()
	if err != nil {
		t.Fatal(err)
	}
	if backup != "" {
		if err := st.View(func(tx *bolt.Tx) error {
			return tx.CopyFile(filepath.Join(backup, store.FileName), 0o600)
		}); err != nil {
			t.Fatal(err)
		}
	}
	return alice, bobDir, sealed
}
