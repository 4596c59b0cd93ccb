package peering

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// vouchedPair is an author's lines 1 to 3: line 2 chains to line 1 with a
// signature of its own that fails, and line 3 chains to line 2 with a
// good one, so that the author's key vouches for line 2 although line 2
// alone does not hold. Only the author can make such a pair.
func vouchedPair(t *testing.T) (lines []wire.ChatMsg, author ed25519.PrivateKey) {
	t.Helper()
	key, _ := netTestNewKey(t)
	l1 := netTestChat(key, 1, "line one")
	l2 := netTestChainedChat(key, 2, "line two, badly signed", l1)
	l2.Sig = slices.Clone(l2.Sig)
	l2.Sig[3] ^= 1
	l3 := netTestChainedChat(key, 3, "line three, vouching for two", l2)
	return []wire.ChatMsg{l1, l2, l3}, key
}

// vouchSend writes the lines to p as frames of type frame, at once. As
// LINES, they go as an answer packs them: runs of chained lines as LINES,
// any other line as CATCHUP.
func vouchSend(t *testing.T, p *netTestPeer, frame string, lines []wire.ChatMsg) {
	t.Helper()
	var burst []byte
	packer := wire.NewLinesPacker(0)
	for _, m := range lines {
		if frame == wire.FrameLines && wire.Chained(m.Event()) {
			done, _, err := packer.Add(m.Event())
			if err != nil {
				t.Fatal(err)
			}
			burst = append(burst, done...)
			continue
		}
		done, _ := packer.Flush()
		burst = append(burst, done...)
		var payload any = m
		typ := frame
		if frame == wire.FrameCatchup || frame == wire.FrameLines {
			typ, payload = wire.FrameCatchup, wire.CatchupMsg{Chat: &m}
		}
		f, err := wire.EncodeFrame(typ, payload, 0)
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, f...)
	}
	done, _ := packer.Flush()
	burst = append(burst, done...)
	_ = p.tc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.tc.Write(burst); err != nil {
		t.Fatal(err)
	}
}

func vouchEvents(lines []wire.ChatMsg) []eventlog.Signed {
	out := make([]eventlog.Signed, len(lines))
	for i, m := range lines {
		out[i] = m.Event()
	}
	return out
}

// vouchHolds reports which of lines n holds.
func vouchHolds(t *testing.T, n *netTestNode, lines []wire.ChatMsg) []bool {
	t.Helper()
	held, err := n.log.Holds(vouchEvents(lines))
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// An author's badly signed line that its next line vouches for reaches
// Alice in a catch-up and is stored; Bob catches up from Alice with every
// line in an ingest batch of its own, so the line and its voucher are
// never checked together: Bob holds the line back until the voucher comes
// and stores both. Nobody honest is penalized, and Alice and Bob hold the
// same lines. The same holds when Bob held the voucher already (a live
// copy) and the catch-up brings the line alone: the log vouches.
func TestALineVouchedForAcrossBatchBoundariesIsStoredAlikeAndBlamesNobody(t *testing.T) {
	for _, voucherFirst := range []bool{false, true} {
		name := "the pair in a catch-up"
		if voucherFirst {
			name = "the voucher held already"
		}
		t.Run(name, func(t *testing.T) {
			lines, _ := vouchedPair(t)
			oneByOne := func(cfg *Config) {
				cfg.ingestBatch = 1
				cfg.SyncInterval = 500 * time.Millisecond
			}
			a := netTestStart(t, "Alice", oneByOne)
			malloryKey, mallory := netTestNewKey(t)
			p := netTestDialTLS(t, a.Addr().String(), malloryKey)
			if err := p.join("Mallory"); err != nil {
				t.Fatal(err)
			}
			vouchSend(t, p, wire.FrameCatchup, lines)
			netTestWaitFor(t, 20*time.Second, "Alice holding the author's three lines", func() bool {
				return !slices.Contains(vouchHolds(t, a, lines), false)
			})
			if _, penalized := a.penalties.active(mallory, time.Now()); penalized {
				t.Error("Alice penalized the peer that brought a vouched pair")
			}

			var b *netTestNode
			if voucherFirst {
				// Bob takes line 3 live from another peer first: it
				// holds on its own signature.
				b = netTestStart(t, "Bob", oneByOne)
				otherKey, _ := netTestNewKey(t)
				q := netTestDialTLS(t, b.Addr().String(), otherKey)
				if err := q.join("Trent"); err != nil {
					t.Fatal(err)
				}
				vouchSend(t, q, wire.FrameChat, lines[2:])
				netTestWaitFor(t, 20*time.Second, "Bob holding line 3", func() bool { return vouchHolds(t, b, lines)[2] })
				if err := b.Connect(context.Background(), a.Addr().String()); err != nil {
					t.Fatal(err)
				}
			} else {
				b = netTestStart(t, "Bob", func(cfg *Config) { oneByOne(cfg); netTestSeeds(a)(cfg) })
			}
			netTestWaitFor(t, 20*time.Second, "Bob holding the author's three lines", func() bool {
				return !slices.Contains(vouchHolds(t, b, lines), false)
			})
			// Two rounds more each way: nothing either does after
			// must blame the other.
			for _, n := range []*netTestNode{a, b} {
				from := vouchRounds(n)
				netTestWaitFor(t, 20*time.Second, n.Name()+" to begin two more catch-up rounds", func() bool {
					return vouchRounds(n) >= from+2
				})
			}
			for _, pair := range [][2]*netTestNode{{a, b}, {b, a}} {
				if _, penalized := pair[0].penalties.active(pair[1].ID(), time.Now()); penalized {
					t.Errorf("%s penalized %s", pair[0].Name(), pair[1].Name())
				}
				if !pair[0].connectedTo(pair[1]) {
					t.Errorf("%s is no longer connected to %s", pair[0].Name(), pair[1].Name())
				}
				rep, err := pair[0].log.Verify(context.Background())
				if err != nil || len(rep.Problems) > 0 {
					t.Errorf("%s's log does not verify: %v %v", pair[0].Name(), err, rep.Problems)
				}
			}
			if s := b.Stats(); s.PenaltiesViolation > 0 || s.Forked > 0 {
				t.Errorf("Bob: %d violations, %d forks", s.PenaltiesViolation, s.Forked)
			}
		})
	}
}

// vouchRounds is how many catch-up rounds n began on its connections.
func vouchRounds(n *netTestNode) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var most uint64
	for _, c := range n.conns {
		most = max(most, c.cu.roundsBegun.Load())
	}
	return most
}

// The same pair sent live goes as in a catch-up: Alice takes it from
// Mallory, line by line (an ingest batch each), holding line 2 back until
// line 3 vouches for it, and relays it to Bob, who does the same. Both
// store and show the three lines, and nobody is penalized: a relay cannot
// tell such a pair from an honest one, nor should it have to.
func TestAVouchedPairSentLiveIsStoredAndRelayedAlike(t *testing.T) {
	lines, _ := vouchedPair(t)
	oneByOne := func(cfg *Config) { cfg.ingestBatch = 1 }
	a := netTestStart(t, "Alice", oneByOne)
	b := netTestStart(t, "Bob", func(cfg *Config) { oneByOne(cfg); netTestSeeds(a)(cfg) })
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool { return a.connectedTo(b) && b.connectedTo(a) })
	malloryKey, mallory := netTestNewKey(t)
	p := netTestDialTLS(t, a.Addr().String(), malloryKey)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	vouchSend(t, p, wire.FrameChat, lines)
	for _, n := range []*netTestNode{a, b} {
		netTestWaitFor(t, 20*time.Second, n.Name()+" holding the author's three lines", func() bool {
			return !slices.Contains(vouchHolds(t, n, lines), false)
		})
		netTestWaitFor(t, 10*time.Second, n.Name()+" showing line 2", func() bool { return n.display.saw("line two, badly signed") })
	}
	if got := b.Stats().Received; got < 3 {
		t.Errorf("Bob received %d lines live, want the three relayed", got)
	}
	for _, blamed := range []struct {
		by  *netTestNode
		who eventlog.NodeID
	}{{a, mallory}, {b, a.ID()}} {
		if _, penalized := blamed.by.penalties.active(blamed.who, time.Now()); penalized {
			t.Errorf("%s penalized %s", blamed.by.Name(), blamed.who.Short())
		}
	}
	if !a.connectedTo(b) {
		t.Error("Alice and Bob are no longer connected")
	}
}

// The author itself sending its badly signed line live, with nothing
// after it, is dropped and penalized at once: an honest node never sends a
// line of its own that it did not sign, so nothing is waited for. The line
// before it is stored.
func TestALiveLineItsOwnOriginSignedBadlyDropsThePeer(t *testing.T) {
	lines, key := vouchedPair(t)
	a := netTestStart(t, "Alice", nil)
	p := netTestDialTLS(t, a.Addr().String(), key)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	vouchSend(t, p, wire.FrameChat, lines[:2])
	if err := hostileTestClosed(p.tc, 10*time.Second); err != nil {
		t.Errorf("Alice kept the author that sent its badly signed line: %v", err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice penalizing the author", func() bool {
		_, penalized := a.penalties.active(p.id, time.Now())
		return penalized
	})
	if held := vouchHolds(t, a, lines); !held[0] || held[1] {
		t.Errorf("Alice holds %v of the three lines, want line 1 and never line 2", held)
	}
	if a.display.saw("line two, badly signed") {
		t.Error("Alice showed the badly signed line")
	}
}

// A badly signed line whose answer ends (SYNCED) without the line that
// would vouch for it is refused at that end, as the violation of the peer
// that sent it; the line before it is stored.
func TestALineNoVoucherCameForIsRefusedWhenTheAnswerEnds(t *testing.T) {
	for _, frame := range []string{wire.FrameCatchup, wire.FrameLines} {
		t.Run(frame, func(t *testing.T) { testALineNoVoucherCameFor(t, frame) })
	}
}

func testALineNoVoucherCameFor(t *testing.T, frame string) {
	lines, _ := vouchedPair(t)
	a := netTestStart(t, "Alice", func(cfg *Config) { cfg.ingestBatch = 1 })
	// A peer that answers Alice's fingerprint queries, so that her round
	// comes to a SYNC it can end.
	at := hostileSyncLie(t, a, 1)
	round := at.awaitRequest(t, "no SYNC request from Alice")
	vouchSend(t, at.netTestPeer, frame, lines[:2])
	if err := at.write(wire.FrameSynced, wire.SyncedMsg{Sent: 2, Round: round}); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice penalizing the sender", func() bool {
		_, penalized := a.penalties.active(at.id, time.Now())
		return penalized
	})
	if held := vouchHolds(t, a, lines); !held[0] || held[1] {
		t.Errorf("Alice holds %v of the lines, want line 1 and never line 2", held)
	}
}

// A held line's own signature is checked once, when it first fails: held
// back, it is checked again with each later batch of its origin only on
// its successors' word, or a peer sending one failing line at a time could
// make each later line cost a check of every line held. Told that a line
// whose signature holds had failed, the node holds it back again instead
// of taking it.
func TestAHeldLinesOwnSignatureIsNotCheckedAgain(t *testing.T) {
	a := netTestStart(t, "Alice", nil)
	key, _ := netTestNewKey(t)
	_, relay := netTestNewKey(t)
	l1 := netTestChat(key, 1, "line one")
	l2 := netTestChainedChat(key, 2, "line two, signed well", l1)
	from := &conn{n: a.Node, id: relay}
	told := fmt.Errorf("failed before: %w", eventlog.ErrBadSignature)
	good, _, refused, err := a.verifyBatch(from, []inbound{{body: l2.Event(), live: true, ownErr: told}})
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 0 || refused != nil {
		t.Fatalf("kept %d lines, refused %v; want the line held back again", len(good), refused)
	}
	if len(from.chain.lines) != 1 || !errors.Is(from.chain.lines[0].ownErr, told) {
		t.Fatalf("held %d lines, want the one, with the earlier error", len(from.chain.lines))
	}
	// Unheld, the same line is taken on its own signature.
	good, _, _, err = a.verifyBatch(&conn{n: a.Node, id: relay}, []inbound{{body: l2.Event(), live: true}})
	if err != nil || len(good) != 1 {
		t.Fatalf("kept %d lines (%v), want the line", len(good), err)
	}
}

// A badly signed line that a later line of its batch does not chain to is
// still its author's if the log holds the successor that does: an honest
// answer leaves out the lines the asking node holds, so line 2 can come
// with line 4 while line 3, which vouches for it, is held already. It is
// stored, and nobody is blamed.
func TestALineTheLogVouchesForIsTakenWhateverFollowsItInItsBatch(t *testing.T) {
	a := netTestStart(t, "Alice", nil)
	lines, key := vouchedPair(t)
	l4 := netTestChainedChat(key, 4, "line four", lines[2])
	if _, err := a.log.Append(context.Background(), lines[0].Event(), lines[2].Event()); err != nil {
		t.Fatal(err)
	}
	_, relay := netTestNewKey(t)
	good, _, refused, err := a.verifyBatch(&conn{n: a.Node, id: relay}, []inbound{{body: lines[1].Event()}, {body: l4.Event()}})
	if err != nil {
		t.Fatal(err)
	}
	if refused != nil || len(good) != 2 {
		t.Fatalf("kept %d of lines 2 and 4, refused %v; want both kept", len(good), refused)
	}
}
