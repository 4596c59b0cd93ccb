package peering

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
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
// him as long as she may and then writes three lines under the numbers
// of lines he holds. Bob drops or refuses them; Alice learns it from his
// catch-up answer and is told which lines did not reach him. Her lines
// after them reach him.
func TestLinesOfAForkedHistoryAreNamedToTheirAuthor(t *testing.T) {
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
	backup := restoreTestBackup(t, alice, bob) // Bob holds "three" and "four"; the backup does not
	bob.stop()
	bob.log.Close()
	bob.st.Close()

	restored := netTestStartIn(t, backup, "Alice", func(cfg *Config) {
		cfg.FirstCatchupWait = 200 * time.Millisecond
	})
	forked := []string{"forked one", "forked two", "forked three"}
	for _, l := range forked {
		restored.say(t, l)
	}
	netTestWaitFor(t, 5*time.Second, "the restored node showing its lines", func() bool { return restored.display.saw(forked[2]) })
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
	t.Logf("note: %s", note)
	// Bob holds "three" and "four" under the numbers of the first two;
	// the third names a predecessor he does not hold.
	if !strings.HasPrefix(note, "3 of your messages did not reach Bob") {
		t.Errorf("note %q: want it to say 3 messages did not reach Bob", note)
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
	if logged := restored.logs.lines("own history forked: a peer holds another copy's lines under these own seqs; they did not reach it"); len(logged) == 0 {
		t.Error("the fork was not logged")
	}
}

// TestOnlyACopySignedByTheNodesOwnKeyTellsOfAFork: a stranger sends Alice
// another line under the number of one of hers. Signed by a key that is
// not hers, it is dropped unseen, as any copy of a line she holds; signed
// by her own key (another copy of her data directory wrote it), she is
// told her line did not reach that peer.
func TestOnlyACopySignedByTheNodesOwnKeyTellsOfAFork(t *testing.T) {
	alice := netTestStart(t, "Alice", nil)
	alice.say(t, "mine")
	var mine eventlog.Chat
	netTestWaitFor(t, 5*time.Second, "Alice holding her line", func() bool {
		events, err := alice.log.ByOrigin(alice.ID(), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if c, ok := e.Body.(eventlog.Chat); ok && c.Text == "mine" {
				mine = c
				return true
			}
		}
		return false
	})
	other := eventlog.Chat{OriginSeq: mine.OriginSeq, OriginTime: time.Now(), Name: "Alice", Text: "not mine", Prev: mine.Prev}
	forged := other
	forged.Sign(alice.cfg.Key)
	forged.Text = "not mine either" // the signature no longer holds
	mallory := hostileSyncJoin(t, alice, 2)
	netTestWaitFor(t, 5*time.Second, "Mallory connected", func() bool {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		return alice.conns[mallory.id] != nil
	})
	send := func(c eventlog.Chat) {
		m := wire.ChatFromEvent(c)
		if err := mallory.write(wire.FrameCatchup, wire.CatchupMsg{Chat: &m}); err != nil {
			t.Fatal(err)
		}
	}
	send(forged)
	// Then a line that ingest stores, so that the forged copy has been
	// looked at once Alice holds it.
	marker := netTestChat(mallory.key, 1, "after the forgery")
	if err := mallory.write(wire.FrameCatchup, wire.CatchupMsg{Chat: &marker}); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 5*time.Second, "Alice holding Mallory's line", func() bool {
		events, err := alice.log.ByOrigin(mallory.id, 0, 1)
		return err == nil && len(events) == 1
	})
	if notes := alice.display.systemWith("did not reach"); len(notes) > 0 {
		t.Fatalf("a forged copy told Alice of a fork: %q", notes)
	}

	other.Sign(alice.cfg.Key)
	send(other)
	netTestWaitFor(t, 5*time.Second, "Alice told that her line did not reach Mallory", func() bool {
		return len(alice.display.systemWith(`1 of your messages did not reach Mallory`)) > 0
	})
	note := alice.display.systemWith("did not reach")[0]
	if !strings.Contains(note, `"mine"`) || strings.Contains(note, "not mine") {
		t.Errorf("note %q: want it to quote her line, not the other copy's", note)
	}
}

// TestLinesShownToAForkingPeerArePaced: however many lines of its own a
// peer sends that conflict with what a node holds, the node shows it few
// of its copies, so that it is never refused for flooding the peer with
// lines it did not ask for.
func TestLinesShownToAForkingPeerArePaced(t *testing.T) {
	c := budgetTestConn()
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
