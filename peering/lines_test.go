package peering

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"golang.org/x/sync/semaphore"
)

// linesTestHistory appends to n's log n lines of a fresh author, chained
// as an honest node chains them, with a rename among them, so that an
// answer holds runs of LINES cut by a CATCHUP.
func linesTestHistory(t *testing.T, node *netTestNode, n int) (eventlog.NodeID, []eventlog.Body) {
	t.Helper()
	key, author := netTestNewKey(t)
	bodies := make([]eventlog.Body, 0, n)
	var prev []byte
	for i := range n {
		seq := uint64(i + 1)
		var s eventlog.Signed
		if seq == uint64(n/2) {
			nick := eventlog.Nick{OriginSeq: seq, OriginTime: time.Unix(1_700_000_000, int64(i)), Name: "Carol2", Prev: prev}
			nick.Sign(key)
			s = nick
		} else {
			c := eventlog.Chat{OriginSeq: seq, OriginTime: time.Unix(1_700_000_000, int64(i)), Name: "Carol",
				Text: fmt.Sprintf("carol's line %d: the quick brown fox jumps over the lazy dog", seq), Prev: prev}
			c.Sign(key)
			s = c
		}
		bodies = append(bodies, s.(eventlog.Body))
		prev = eventlog.ChainHash(s)
	}
	if _, err := node.log.Append(context.Background(), bodies...); err != nil {
		t.Fatal(err)
	}
	return author, bodies
}

// linesTestOrigin is what n's log holds of origin, in seq order.
func linesTestOrigin(t *testing.T, n *netTestNode, origin eventlog.NodeID) []eventlog.Body {
	t.Helper()
	events, err := n.log.ByOrigin(origin, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]eventlog.Body, len(events))
	for i, e := range events {
		out[i] = e.Body
	}
	return out
}

// linesTestSame reports whether x and y are the same signed messages, in
// the same order, as the wire carries them.
func linesTestSame(t *testing.T, x, y []eventlog.Body) bool {
	t.Helper()
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		fx, err := wire.SignedFrame(x[i], 0)
		if err != nil {
			t.Fatal(err)
		}
		fy, err := wire.SignedFrame(y[i], 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fx, fy) {
			return false
		}
	}
	return true
}

// linesFramesSent is how many LINES frames n's answers sent.
func linesFramesSent(n *netTestNode) uint64 {
	return catchupSum(n.Node, func(cu *catchup) *atomic.Uint64 { return &cu.linesFrames })
}

// Two nodes of version 4 catch up with LINES, and the newcomer stores
// exactly what the other holds.
func TestTwoVersionFourNodesCatchUpWithLines(t *testing.T) {
	const n = 3000
	a := netTestStart(t, "Alice", nil)
	author, bodies := linesTestHistory(t, a, n)
	b := netTestStart(t, "Bob", netTestSeeds(a))
	netTestWaitFor(t, 30*time.Second, "Bob holding the author's lines", func() bool {
		return len(linesTestOrigin(t, b, author)) == n
	})
	if got := linesTestOrigin(t, b, author); !linesTestSame(t, got, linesTestOrigin(t, a, author)) || !linesTestSame(t, got, bodies) {
		t.Error("Bob's copy of the author's lines differs from Alice's")
	}
	if linesFramesSent(a) == 0 {
		t.Error("Alice answered without a LINES frame")
	}
	for _, pair := range [][2]*netTestNode{{a, b}, {b, a}} {
		if _, penalized := pair[0].penalties.active(pair[1].ID(), time.Now()); penalized {
			t.Errorf("%s penalized %s", pair[0].Name(), pair[1].Name())
		}
	}
	rep, err := b.log.Verify(context.Background())
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("Bob's log does not verify: %v %v", err, rep.Problems)
	}
}

// A peer that joined with version 3 is answered in CATCHUP only, and gets
// every line; one of version 4 gets the chained chat lines as LINES and
// the rest as CATCHUP, the same lines in the same order. Either way
// SYNCED counts lines, not frames.
func TestAnAnswerUsesLinesOnlyForAPeerOfVersionFour(t *testing.T) {
	const n = 1200
	a := netTestStart(t, "Alice", nil)
	author, bodies := linesTestHistory(t, a, n)
	for _, version := range []int{3, 4} {
		t.Run(fmt.Sprintf("version %d", version), func(t *testing.T) {
			key, _ := netTestNewKey(t)
			p := netTestDialTLS(t, a.Addr().String(), key)
			if err := p.write(wire.FrameJoin, wire.JoinMsg{Version: version, ID: p.id, Name: "Peer", Port: 9}); err != nil {
				t.Fatal(err)
			}
			if err := p.write(wire.FrameSync, wire.SyncMsg{Origins: []wire.SyncOrigin{}, Round: 1}); err != nil {
				t.Fatal(err)
			}
			frames := map[string]int{}
			var got []eventlog.Body
			deadline := time.Now().Add(30 * time.Second)
			for {
				typ, payload, err := p.next(time.Until(deadline))
				if err != nil {
					t.Fatalf("reading the answer: %v (%d lines so far)", err, len(got))
				}
				frames[typ]++
				switch typ {
				case wire.FrameCatchup:
					s, err := wire.DecodeSigned(typ, payload)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, s.(eventlog.Body))
					continue
				case wire.FrameLines:
					lines, err := wire.DecodeLines(payload)
					if err != nil {
						t.Fatal(err)
					}
					for _, l := range lines {
						got = append(got, l)
					}
					continue
				case wire.FrameSynced:
				default:
					continue
				}
				var m wire.SyncedMsg
				if err := json.Unmarshal(payload, &m); err != nil {
					t.Fatal(err)
				}
				if m.Round != 1 {
					continue // the end of an answer to nothing of ours
				}
				if m.Sent != len(got) {
					t.Errorf("SYNCED says %d lines sent, %d came", m.Sent, len(got))
				}
				break
			}
			var mine []eventlog.Body
			for _, b := range got {
				if s, ok := b.(eventlog.Signed); ok {
					if o, _ := s.OriginKey(); o == author {
						mine = append(mine, b)
					}
				}
			}
			if !linesTestSame(t, mine, bodies) {
				t.Errorf("the peer got %d of the author's %d lines, or not as stored", len(mine), len(bodies))
			}
			t.Logf("frames: %v", frames)
			switch {
			case version < 4 && frames[wire.FrameLines] > 0:
				t.Errorf("a version %d peer was sent %d LINES frames", version, frames[wire.FrameLines])
			case version >= 4 && frames[wire.FrameLines] == 0:
				t.Error("a version 4 peer was sent no LINES frame")
			case version >= 4 && frames[wire.FrameCatchup] > 2:
				// The author's first line (unchained) and the rename.
				t.Errorf("a version 4 peer was sent %d CATCHUP frames, want 2", frames[wire.FrameCatchup])
			}
		})
	}
}

// A LINES frame that breaks the frame's own rules (seqs out of order, a
// Prev left out over a hole) is a violation, as a malformed CATCHUP is:
// the peer is dropped and penalized, and nothing of the frame is stored.
func TestAMalformedLinesFrameIsAViolation(t *testing.T) {
	carolKey, _ := netTestNewKey(t)
	chain := make([]wire.ChatMsg, 4)
	chain[0] = netTestChat(carolKey, 1, "carol's line 1")
	for i := 1; i < len(chain); i++ {
		chain[i] = netTestChainedChat(carolKey, uint64(i+1), fmt.Sprintf("carol's line %d", i+1), chain[i-1])
	}
	line := func(m wire.ChatMsg) wire.LineMsg {
		return wire.LineMsg{Seq: m.Seq, Time: m.Time, Name: m.Name, Text: m.Text, Sig: m.Sig, Prev: m.Prev}
	}
	tests := []struct {
		name  string
		lines []wire.LineMsg
	}{
		{"seqs out of order", []wire.LineMsg{line(chain[2]), line(chain[1])}},
		{"prev left out over a hole", func() []wire.LineMsg {
			third := line(chain[3])
			third.Prev = nil
			return []wire.LineMsg{line(chain[1]), third}
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netTestStart(t, "Alice", nil)
			malloryKey, mallory := netTestNewKey(t)
			p := netTestDialTLS(t, a.Addr().String(), malloryKey)
			if err := p.join("Mallory"); err != nil {
				t.Fatal(err)
			}
			if err := p.write(wire.FrameLines, wire.LinesMsg{Origin: chain[0].Origin, Lines: tt.lines}); err != nil {
				t.Fatal(err)
			}
			if err := hostileTestClosed(p.tc, 10*time.Second); err != nil {
				t.Errorf("Alice kept the peer: %v", err)
			}
			netTestWaitFor(t, 10*time.Second, "Alice penalizing the sender", func() bool {
				_, penalized := a.penalties.active(mallory, time.Now())
				return penalized
			})
			if s := a.Stats(); s.PenaltiesViolation == 0 {
				t.Error("the penalty was not for a violation")
			}
			if held := vouchHolds(t, a, chain); slices.Contains(held, true) {
				t.Errorf("Alice holds %v of the lines", held)
			}
		})
	}
}

// A badly signed line and the line that vouches for it, in one LINES
// frame of an answer Alice asked for, are stored as they would be from
// CATCHUP frames, and the peer that brought them is not blamed.
func TestALineVouchedForInsideALinesAnswerIsStored(t *testing.T) {
	lines, _ := vouchedPair(t)
	a := netTestStart(t, "Alice", nil)
	at := hostileSyncLie(t, a, 1)
	round := at.awaitRequest(t, "no SYNC request from Alice")
	vouchSend(t, at.netTestPeer, wire.FrameLines, lines)
	if err := at.write(wire.FrameSynced, wire.SyncedMsg{Sent: len(lines), Round: round}); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice holding the three lines", func() bool {
		return !slices.Contains(vouchHolds(t, a, lines), false)
	})
	if _, penalized := a.penalties.active(at.id, time.Now()); penalized {
		t.Error("Alice penalized the peer that brought a vouched pair")
	}
}

// The catch-up queue holds at most catchQueueBytes of frames, however few
// they are: sixteen LINES frames of 64 KiB fill it where 256 CATCHUP
// frames would not.
func TestTheCatchupQueueIsBoundedInBytes(t *testing.T) {
	cfg := DefaultConfig()
	c := &conn{catchq: make(chan []byte, catchupPage), closing: make(chan struct{}),
		catchRoom: newQueueRoom(catchQueueBytes(&cfg), catchFreeBytes, semaphore.NewWeighted(catchRoomBytes))}
	ctx, cancel := context.WithCancel(context.Background())
	c.done = ctx
	frame := make([]byte, wire.DefaultMaxFrame)
	want := int(catchQueueBytes(&cfg)) / len(frame)
	queued := make(chan int)
	go func() {
		n := 0
		for c.sendBulk(frame) {
			n++
		}
		queued <- n
	}()
	netTestWaitFor(t, 10*time.Second, "the queue to fill", func() bool { return len(c.catchq) == want })
	// The next frame waits for room, until the connection ends.
	close(c.closing)
	cancel()
	if n := <-queued; n != want || len(c.catchq) != want {
		t.Errorf("%d frames of %d bytes queued, want %d (%d bytes)", n, len(frame), want, catchQueueBytes(&cfg))
	}
	// The write loop's side gives the room back.
	c.takeBulk(<-c.catchq)
	if !c.catchRoom.bound.TryAcquire(int64(len(frame))) {
		t.Error("a frame taken from the queue did not give its room back")
	}
}
