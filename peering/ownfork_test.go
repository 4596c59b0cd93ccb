package peering

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/time/rate"
)

// systemWith returns the system lines shown that contain part.
func (d *netTestDisplay) systemWith(part string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, s := range d.system {
		if strings.Contains(s, part) {
			out = append(out, s)
		}
	}
	return out
}

// TestLinesOfAForkedHistoryAreNamedToTheirAuthor: Alice is restored from
// a backup while Bob, who holds her newest lines, is away; she waits for
// him as long as she may and then writes lines under the numbers of lines
// he holds, and one more. Bob drops or refuses them all; Alice learns it
// from what he shows her, walking back to where the histories part, and
// is told, in one note, every line that did not reach him. Her lines
// after them reach him.
func TestLinesOfAForkedHistoryAreNamedToTheirAuthor(t *testing.T) {
	for _, held := range []int{2, 6} {
		t.Run(fmt.Sprintf("%d lines held", held), func(t *testing.T) {
			free, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			bobPort := free.Addr().(*net.TCPAddr).Port
			free.Close()
			bobDir := t.TempDir()
			bob := netTestStartIn(t, bobDir, "Bob", func(cfg *Config) { cfg.Port = bobPort })
			alice := netTestStart(t, "Alice", netTestSeeds(bob))
			netTestWaitFor(t, 5*time.Second, "Alice and Bob connected", func() bool { return alice.connectedTo(bob) && bob.connectedTo(alice) })
			alice.say(t, "before the backup")
			netTestWaitFor(t, 5*time.Second, "Bob showing Alice's first line", func() bool { return bob.display.saw("before the backup") })
			backup := t.TempDir()
			if err := alice.st.View(func(tx *bolt.Tx) error {
				return tx.CopyFile(filepath.Join(backup, store.FileName), 0o600)
			}); err != nil {
				t.Fatal(err)
			}
			for i := range held {
				alice.say(t, fmt.Sprintf("after the backup %d", i))
			}
			netTestWaitFor(t, 5*time.Second, "Bob showing Alice's lines after the backup", func() bool {
				return bob.display.saw(fmt.Sprintf("after the backup %d", held-1))
			})
			alice.stop()
			bob.stop()
			bob.log.Close()
			bob.st.Close()

			restored := netTestStartIn(t, backup, "Alice", func(cfg *Config) {
				cfg.FirstCatchupWait = 200 * time.Millisecond
			})
			var forked []string
			for i := range held + 1 {
				forked = append(forked, fmt.Sprintf("forked %d", i))
				restored.say(t, forked[i])
			}
			netTestWaitFor(t, 5*time.Second, "the restored node showing its lines", func() bool { return restored.display.saw(forked[held]) })
			bob = netTestStartIn(t, bobDir, "Bob", func(cfg *Config) {
				cfg.Port = bobPort
				cfg.Seeds = []string{restored.Addr().String()}
			})
			var notes []string
			netTestWaitFor(t, 10*time.Second, "the restored node naming the lines Bob did not take", func() bool {
				notes = restored.display.systemWith("did not reach")
				return len(notes) > 0
			})
			note := notes[0]
			if want := fmt.Sprintf("%d of your messages did not reach Bob", held+1); !strings.HasPrefix(note, want) {
				t.Errorf("note %q: want it to begin %q", note, want)
			}
			for _, l := range forked {
				if !strings.Contains(note, `"`+l+`"`) {
					t.Errorf("note %q does not quote %q", note, l)
				}
				if bob.display.saw(l) {
					t.Errorf("Bob showed %q, which collided with a line he holds", l)
				}
			}
			restored.say(t, "after the fork")
			netTestWaitFor(t, 5*time.Second, "Bob showing the line after the fork", func() bool { return bob.display.saw("after the fork") })
			if n := len(restored.display.systemWith("did not reach")); n != 1 {
				t.Errorf("the restored node said %d times that lines did not reach Bob, want once", n)
			}
		})
	}
}

// TestOnlyACopySignedByTheNodesOwnKeyTellsOfAFork: a stranger sends
// Alice another line under the number of one of hers. Signed by her own
// key (another copy of her data directory wrote it), she is told her line
// did not reach that peer. Forged, it tells her nothing, and the stranger
// is refused as for any forged line.
func TestOnlyACopySignedByTheNodesOwnKeyTellsOfAFork(t *testing.T) {
	alice := netTestStart(t, "Alice", nil)
	alice.say(t, "mine")
	mine := ownForkTestLine(t, alice, "mine")
	other := eventlog.Chat{OriginSeq: mine.OriginSeq, OriginTime: time.Now(), Name: "Alice", Text: "not mine", Prev: mine.Prev}
	other.Sign(alice.cfg.Key)
	forged := other
	forged.Text = "not mine either" // the signature no longer holds

	mallory := ownForkTestJoin(t, alice)
	mallory.sendCatchup(t, forged)
	netTestWaitFor(t, 5*time.Second, "Mallory refused for the forged copy", func() bool {
		_, penalized := alice.penalties.active(mallory.id, time.Now())
		return penalized
	})
	trudy := ownForkTestJoin(t, alice)
	trudy.sendCatchup(t, other)
	netTestWaitFor(t, 5*time.Second, "Alice told that her line did not reach Trudy", func() bool {
		return len(alice.display.systemWith("1 of your messages did not reach")) > 0
	})
	notes := alice.display.systemWith("did not reach")
	if len(notes) != 1 || !strings.Contains(notes[0], `"mine"`) || strings.Contains(notes[0], "not mine") {
		t.Errorf("notes %q: want one, quoting her line, not the other copy's", notes)
	}
}

// TestAForgedCopyOfThePeersOwnHeldLineIsAViolation: a peer sends a copy of
// a line of its own that the node holds, altered. Checking it costs a
// signature, so the peer pays as for any forged line: it is refused.
func TestAForgedCopyOfThePeersOwnHeldLineIsAViolation(t *testing.T) {
	alice := netTestStart(t, "Alice", nil)
	mallory := ownForkTestJoin(t, alice)
	held := netTestChat(mallory.key, 1, "held")
	if err := mallory.write(wire.FrameChat, held); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 5*time.Second, "Alice holding Mallory's line", func() bool {
		events, err := alice.log.ByOrigin(mallory.id, 0, 1)
		return err == nil && len(events) == 1
	})
	// A genuine copy is a copy, nothing more.
	if err := mallory.write(wire.FrameChat, held); err != nil {
		t.Fatal(err)
	}
	forged := held
	forged.Text = "held, altered"
	if err := mallory.write(wire.FrameChat, forged); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 5*time.Second, "Mallory refused for the forged copy", func() bool {
		_, penalized := alice.penalties.active(mallory.id, time.Now())
		return penalized
	})
}

// TestLostLinesFoundLaterAreNamedInALaterNote: proofs of a fork that come
// after a note was shown, faster than the notes may follow each other,
// are all named on screen: what was found while a note had to wait is in
// the next one.
func TestLostLinesFoundLaterAreNamedInALaterNote(t *testing.T) {
	alice := netTestStart(t, "Alice", func(cfg *Config) { cfg.ForkNoteEvery = 300 * time.Millisecond })
	const lines = 12
	for i := range lines {
		alice.say(t, fmt.Sprintf("line %02d", i))
	}
	var mine []eventlog.Chat
	for i := range lines {
		mine = append(mine, ownForkTestLine(t, alice, fmt.Sprintf("line %02d", i)))
	}
	mallory := ownForkTestJoin(t, alice)
	logged := func() int {
		return len(alice.logs.lines("own history forked: a peer holds another copy's lines under these own seqs; they did not reach it"))
	}
	// Another copy's line under every third of hers: each proof names her
	// line there and the one after it, no two the same.
	proofs := 0
	for k := 1; k < lines; k += 3 {
		other := eventlog.Chat{OriginSeq: mine[k].OriginSeq, OriginTime: time.Now(), Name: "Alice", Text: "other copy", Prev: mine[k].Prev}
		other.Sign(alice.cfg.Key)
		mallory.sendCatchup(t, other)
		proofs++
		netTestWaitFor(t, 5*time.Second, "the proof logged", func() bool { return logged() == proofs })
		if proofs == 1 {
			netTestWaitFor(t, 5*time.Second, "the first note", func() bool { return len(alice.display.systemWith("did not reach")) == 1 })
		}
	}
	named := func() (missing []string) {
		notes := strings.Join(alice.display.systemWith("did not reach"), "\n")
		for k := 1; k < lines; k += 3 {
			for _, c := range mine[k : k+2] {
				if !strings.Contains(notes, `"`+c.Text+`"`) {
					missing = append(missing, c.Text)
				}
			}
		}
		return missing
	}
	netTestWaitFor(t, 10*time.Second, "every lost line named on screen", func() bool { return len(named()) == 0 })
	if n := len(alice.display.systemWith("did not reach")); n < 2 {
		t.Errorf("%d notes, want the lines found after the first in a later one", n)
	}
}

// ownForkTestLine waits until tn holds its own chat line text and returns
// it.
func ownForkTestLine(t *testing.T, tn *netTestNode, text string) eventlog.Chat {
	t.Helper()
	var line eventlog.Chat
	netTestWaitFor(t, 5*time.Second, tn.Name()+" holding its line "+text, func() bool {
		events, err := tn.log.ByOrigin(tn.ID(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if c, ok := e.Body.(eventlog.Chat); ok && c.Text == text {
				line = c
				return true
			}
		}
		return false
	})
	return line
}

// ownForkTestJoin connects a hand-driven peer to tn.
func ownForkTestJoin(t *testing.T, tn *netTestNode) *hostileSyncAttacker {
	t.Helper()
	p := hostileSyncJoin(t, tn, wire.ProtocolVersion)
	netTestWaitFor(t, 5*time.Second, "the peer connected", func() bool {
		tn.mu.Lock()
		defer tn.mu.Unlock()
		return tn.conns[p.id] != nil
	})
	return p
}

// sendCatchup sends c as CATCHUP.
func (p *netTestPeer) sendCatchup(t *testing.T, c eventlog.Chat) {
	t.Helper()
	m := wire.ChatFromEvent(c)
	if err := p.write(wire.FrameCatchup, wire.CatchupMsg{Chat: &m}); err != nil {
		t.Fatal(err)
	}
}

// TestLinesShownToAForkingPeerArePaced: however many lines of its own a
// peer sends that conflict with what a node holds, the node shows it few
// of its copies, so that it is never refused for flooding the peer with
// lines it did not ask for.
func TestLinesShownToAForkingPeerArePaced(t *testing.T) {
	c := budgetTestConn()
	c.version = wire.ProtocolVersion
	c.sendq = make(chan []byte, 1000)
	c.forkReplies = rate.NewLimiter(forkReplyRate, forkReplyBurst)
	key, _ := netTestNewKey(t)
	line := eventlog.Chat{OriginSeq: 1, OriginTime: time.Now(), Name: "Mallory", Text: "held"}
	line.Sign(key)
	for range 200 {
		c.showHeld(line)
	}
	if got := len(c.sendq); got == 0 || got > forkReplyBurst+1 {
		t.Errorf("%d lines shown for 200 conflicting ones at once, want 1 to %d", got, forkReplyBurst+1)
	}
	if int(forkReplyRate) >= DefaultConfig().ChatRate {
		t.Errorf("lines shown at %v a second, not below the chat budget of %v", forkReplyRate, DefaultConfig().ChatRate)
	}
}
