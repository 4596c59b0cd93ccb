package peering

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// A batch's signatures are checked together; a bad one must be found
// wherever it sits and refused alone, the good ones around it kept in
// order, and the first bad one named in the violation that drops the
// peer.
func TestVerifyBatchRefusesOnlyTheBadSignatures(t *testing.T) {
	key, _ := netTestNewKey(t)
	for _, size := range []int{1, 15, 64, maxIngestBatch} {
		tried := map[int]bool{}
		for _, bad := range []int{-1, 0, size / 2, size - 1} {
			if tried[bad] {
				continue
			}
			tried[bad] = true
			t.Run(fmt.Sprintf("size=%d/bad=%d", size, bad), func(t *testing.T) {
				batch := make([]inbound, 0, size+1)
				refused := map[uint64]bool{}
				for i := range size {
					m := netTestChat(key, uint64(i+1), fmt.Sprintf("line %d", i))
					// Past the bad one, the last is bad too: the first
					// must be the one named.
					if i == bad || (bad >= 0 && i == size-1) {
						m.Sig[0] ^= 1
						refused[m.Seq] = true
					}
					batch = append(batch, inbound{body: m.Event(), live: true})
				}
				batch = append(batch, inbound{synced: true}) // the end of a catch-up, unsigned
				// Live lines need neither a log nor a connection.
				good, _, err, readErr := (*Node)(nil).verifyBatch(nil, batch)
				if readErr != nil {
					t.Fatal(readErr)
				}
				if len(good) != len(batch)-len(refused) {
					t.Fatalf("kept %d of %d with %d bad", len(good), len(batch), len(refused))
				}
				last := uint64(0)
				for _, m := range good[:len(good)-1] {
					_, seq := m.body.OriginKey()
					if refused[seq] || seq <= last {
						t.Fatalf("kept seq %d after %d; refused %v", seq, last, refused)
					}
					last = seq
				}
				if !good[len(good)-1].synced {
					t.Error("the end of the catch-up was lost")
				}
				if bad < 0 {
					if err != nil {
						t.Fatalf("good batch: %v", err)
					}
					return
				}
				if !errors.Is(err, eventlog.ErrBadSignature) || !errors.Is(err, errViolation) {
					t.Fatalf("got %v, want a violation for a bad signature", err)
				}
				if want := fmt.Sprintf("seq %d:", bad+1); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			})
		}
	}
}

// A bad line at the end of a burst of good ones, live or in a catch-up
// answer, chained or not, is refused alone: the node stores every good
// line before it, also those checked in the same batch (on a chain's
// word, when they chain), never stores or shows the bad one, and drops
// the peer that sent a forged, altered or reordered line, as before
// signatures were checked in batches or chains (a chained caught-up line
// once the answer it came in ends without a line vouching for it, a
// chained live one once its origin's next line does not vouch for it). (What
// a dropped peer sent after the bad line is never read, as before.) A fork (the author's own
// second line under a number already used, or a line chaining to another
// line than the one held before it) is validly signed: the first one
// stays, the fork is neither stored nor shown, and the relaying peer is
// not to blame. Chained lines are also sent packed as LINES (version 4),
// unasked, which must go exactly as CATCHUP does.
func TestABadLineAfterGoodOnesIsRefusedAloneLiveAndInCatchUp(t *testing.T) {
	for _, chained := range []bool{false, true} {
		t.Run(fmt.Sprintf("chained=%v", chained), func(t *testing.T) { testABadLineAfterGoodOnes(t, chained) })
	}
}

func testABadLineAfterGoodOnes(t *testing.T, chained bool) {
	const lines = 300
	const badText = "the bad line"
	carolKey, carol := netTestNewKey(t)
	good := make([]wire.ChatMsg, lines)
	// line signs carol's line seq as the chain of good would have it.
	line := func(key ed25519.PrivateKey, seq uint64, text string) wire.ChatMsg {
		if !chained || seq == 1 {
			return netTestChat(key, seq, text)
		}
		return netTestChainedChat(key, seq, text, good[seq-2])
	}
	for i := range good {
		good[i] = line(carolKey, uint64(i+1), fmt.Sprintf("carol's line %d", i+1))
	}
	kinds := []struct {
		name  string
		bad   func(mallory ed25519.PrivateKey) wire.ChatMsg
		drops bool
	}{
		{"forged", func(mallory ed25519.PrivateKey) wire.ChatMsg {
			m := line(mallory, lines+1, badText)
			m.Origin = carol
			return m
		}, true},
		{"altered", func(ed25519.PrivateKey) wire.ChatMsg {
			m := line(carolKey, lines+1, "carol's own words")
			m.Text = badText
			return m
		}, true},
		{"reordered", func(ed25519.PrivateKey) wire.ChatMsg {
			m := good[9]
			m.Seq, m.Text = lines+1, badText
			m.Sig = line(carolKey, 10, badText).Sig
			return m
		}, true},
		{"forked", func(ed25519.PrivateKey) wire.ChatMsg { return line(carolKey, 100, badText) }, false},
	}
	if chained {
		kinds = append(kinds, struct {
			name  string
			bad   func(mallory ed25519.PrivateKey) wire.ChatMsg
			drops bool
		}{"forked chain", func(ed25519.PrivateKey) wire.ChatMsg {
			other := netTestChainedChat(carolKey, lines, "carol's other line", good[lines-2])
			return netTestChainedChat(carolKey, lines+1, badText, other)
		}, false})
	}
	frames := []string{wire.FrameChat, wire.FrameCatchup}
	if chained {
		frames = append(frames, wire.FrameLines)
	}
	for _, frame := range frames {
		for _, kind := range kinds {
			t.Run(frame+"/"+kind.name, func(t *testing.T) {
				// A chained caught-up line whose own signature fails
				// is held back for a voucher until the answer ends;
				// Mallory never ends hers, so Alice's deadline does.
				a := netTestStart(t, "Alice", func(cfg *Config) { cfg.SyncTimeout = 2 * time.Second })
				malloryKey, _ := netTestNewKey(t)
				p := netTestDialTLS(t, a.Addr().String(), malloryKey)
				if err := p.join("Mallory"); err != nil {
					t.Fatal(err)
				}
				want := good
				send := append(slices.Clone(good), kind.bad(malloryKey))
				if frame == wire.FrameChat && chained && kind.drops {
					// A live chained line whose own signature fails
					// waits for its origin's next line, which could
					// vouch for it: Carol's real next line does not,
					// and condemns it.
					want = append(slices.Clone(good), line(carolKey, lines+1, "carol's next line"))
					send = append(send, want[lines])
				}
				vouchSend(t, p, frame, send)
				sent := make([]eventlog.Signed, len(want))
				for i, m := range want {
					sent[i] = m.Event()
				}
				netTestWaitFor(t, 20*time.Second, "Alice holding every good line", func() bool {
					held, err := a.log.Holds(sent)
					return err == nil && !slices.Contains(held, false)
				})
				if kind.name == "forked chain" {
					// Refused, not dropped: wait for the refusal before
					// looking for the line.
					netTestWaitFor(t, 10*time.Second, "Alice refusing the fork", func() bool { return a.Stats().Forked == 1 })
				}
				if kind.drops {
					if err := hostileTestClosed(p.tc, 10*time.Second); err != nil {
						t.Errorf("Alice kept the peer that sent a %s line: %v", kind.name, err)
					}
				}
				stored, err := a.log.LastLines(2 * lines)
				if err != nil {
					t.Fatal(err)
				}
				if len(stored) != len(want) {
					t.Errorf("Alice holds %d lines, want the %d good ones", len(stored), len(want))
				}
				for _, e := range stored {
					if c := e.Body.(eventlog.Chat); c.Text == badText {
						t.Errorf("Alice stored the %s line as seq %d", kind.name, c.OriginSeq)
					}
				}
				if a.display.saw(badText) {
					t.Errorf("Alice showed the %s line", kind.name)
				}
				if !kind.drops && !slices.ContainsFunc(a.Users(), func(u User) bool { return u.ID == p.id }) {
					t.Error("Alice dropped the peer that relayed a fork")
				}
			})
		}
	}
}

// chatMsgV2 is CHAT as a version 2 node decodes it: without Prev.
type chatMsgV2 struct {
	Origin eventlog.NodeID `json:"origin"`
	Seq    uint64          `json:"seq"`
	Time   int64           `json:"time"`
	Name   string          `json:"name"`
	Text   string          `json:"text"`
	Sig    []byte          `json:"sig"`
}

// A peer of protocol version 2 still chats with a node that chains its
// lines: it is sent every line it can read (the node's first, which has
// nothing to chain to) and none it cannot (the chained ones, whose Prev
// its strict decoder would refuse), and its own unchained lines are taken
// as before.
func TestAVersionTwoPeerGetsOnlyLinesItCanRead(t *testing.T) {
	a := netTestStart(t, "Alice", nil)
	oldKey, _ := netTestNewKey(t)
	p := netTestDialTLS(t, a.Addr().String(), oldKey)
	if err := p.write(wire.FrameJoin, wire.JoinMsg{Version: 2, ID: p.id, Name: "Old", Port: 9}); err != nil {
		t.Fatal(err)
	}
	newKey, _ := netTestNewKey(t)
	q := netTestDialTLS(t, a.Addr().String(), newKey)
	if err := q.join("New"); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice listing both peers", func() bool {
		users := a.Users()
		return slices.ContainsFunc(users, func(u User) bool { return u.ID == p.id }) &&
			slices.ContainsFunc(users, func(u User) bool { return u.ID == q.id })
	})
	if err := p.write(wire.FrameChat, netTestChat(oldKey, 1, "from an old node")); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice showing the old node's line", func() bool { return a.display.saw("from an old node") })
	for _, text := range []string{"one", "two", "three"} {
		if err := a.Say(context.Background(), text); err != nil {
			t.Fatal(err)
		}
	}
	// Once the new peer has the last line, Alice has sent the old one
	// all she will; frames to one peer keep their order, so once its
	// PONG is in, so is every line she sent it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		typ, payload, err := q.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("the new peer reading Alice's lines: %v", err)
		}
		if typ != wire.FrameChat {
			continue
		}
		var m wire.ChatMsg
		if err := wire.DecodeStrict(payload, &m); err != nil {
			t.Fatal(err)
		}
		if m.Seq > 1 && len(m.Prev) == 0 {
			t.Errorf("Alice's line %d does not chain", m.Seq)
		}
		if m.Text == "three" {
			break
		}
	}
	if err := p.write(wire.FramePing, wire.PingMsg{Nonce: 77}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		typ, payload, err := p.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("reading Alice's frames: %v (lines so far %q)", err, got)
		}
		if typ == wire.FramePong {
			break
		}
		if typ != wire.FrameChat {
			continue
		}
		var m chatMsgV2
		if err := wire.DecodeStrict(payload, &m); err != nil {
			t.Fatalf("a version 2 node cannot read a CHAT it was sent: %v", err)
		}
		if err := (eventlog.Chat{Origin: m.Origin, OriginSeq: m.Seq, OriginTime: time.Unix(0, m.Time), Name: m.Name, Text: m.Text, Sig: m.Sig}).Verify(); err != nil {
			t.Fatalf("a CHAT a version 2 node was sent does not verify as one: %v", err)
		}
		got = append(got, m.Text)
	}
	if !slices.Equal(got, []string{"one"}) {
		t.Errorf("the old peer was sent %q, want only the unchained first line", got)
	}
}

// A line altered inside a chained catch-up breaks the chain there: the
// lines before it are stored (checked on their own once their run's tail
// fails), the altered one never is, and the peer that sent it is dropped.
// As LINES, the lines after it in its frame fail with it: their Prev is
// filled in from the altered line.
func TestAnAlteredLineInsideAChainedCatchUpIsRefusedAlone(t *testing.T) {
	for _, frame := range []string{wire.FrameCatchup, wire.FrameLines} {
		t.Run(frame, func(t *testing.T) { testAnAlteredLineInsideAChainedCatchUp(t, frame) })
	}
}

func testAnAlteredLineInsideAChainedCatchUp(t *testing.T, frame string) {
	const lines, bad = 200, 120
	carolKey, _ := netTestNewKey(t)
	chain := make([]wire.ChatMsg, lines)
	for i := range chain {
		if i == 0 {
			chain[i] = netTestChat(carolKey, 1, "carol's line 1")
			continue
		}
		chain[i] = netTestChainedChat(carolKey, uint64(i+1), fmt.Sprintf("carol's line %d", i+1), chain[i-1])
	}
	chain[bad].Text = "pay mallory"

	a := netTestStart(t, "Alice", nil)
	malloryKey, _ := netTestNewKey(t)
	p := netTestDialTLS(t, a.Addr().String(), malloryKey)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	vouchSend(t, p, frame, chain)
	before := make([]eventlog.Signed, bad)
	for i := range before {
		before[i] = chain[i].Event()
	}
	netTestWaitFor(t, 20*time.Second, "Alice holding every line before the altered one", func() bool {
		held, err := a.log.Holds(before)
		return err == nil && !slices.Contains(held, false)
	})
	if err := hostileTestClosed(p.tc, 10*time.Second); err != nil {
		t.Errorf("Alice kept the peer that sent an altered line: %v", err)
	}
	stored, err := a.log.LastLines(2 * lines)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range stored {
		if c := e.Body.(eventlog.Chat); c.OriginSeq == bad+1 {
			t.Errorf("Alice stored line %d as %q", c.OriginSeq, c.Text)
		}
	}
	rep, err := a.log.Verify(context.Background())
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("Alice's log does not verify: %v %v", err, rep.Problems)
	}
}
