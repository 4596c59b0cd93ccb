package peering

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// TestANodeRestoredFromABackupSendsWhatItTypesAtOnce: a node started from
// an old copy of its data directory lacks its own newest lines, which its
// peers hold. A line typed the moment it starts must not take the number
// of one of those (its peers would drop it as held, and every later line
// would fork from the chain they hold): it goes out once the node has
// caught up on its own lines, numbered after them, and so do the lines
// after it.
func TestANodeRestoredFromABackupSendsWhatItTypesAtOnce(t *testing.T) {
	bob := netTestStart(t, "Bob", nil)
	alice := netTestStart(t, "Alice", netTestSeeds(bob))
	netTestWaitFor(t, 5*time.Second, "Alice and Bob connected", func() bool { return alice.connectedTo(bob) && bob.connectedTo(alice) })

	backup := restoreTestBackup(t, alice, bob)

	restored := netTestStartIn(t, backup, "Alice", nil)
	restored.say(t, "typed at once after the restore")
	netTestWaitFor(t, 10*time.Second, "Bob showing the line typed after the restore", func() bool {
		return bob.display.saw("typed at once after the restore")
	})
	restored.say(t, "and the next one")
	netTestWaitFor(t, 5*time.Second, "Bob showing the line after it", func() bool { return bob.display.saw("and the next one") })
	for _, l := range []string{"one", "two", "three", "four"} {
		if n := bob.display.count(l); n != 1 {
			t.Errorf("Bob showed %q %d times, want once", l, n)
		}
	}
	for _, n := range []*netTestNode{restored, bob} {
		if forks := n.logs.lines("origin forked its chain; message refused"); len(forks) > 0 {
			t.Errorf("%s refused %d lines as forks: %v", n.Name(), len(forks), forks)
		}
	}
}

// TestARestoredNodeWaitsForAPeerThatHoldsItsLines: the only peer a
// restored node reaches first is a newcomer, who holds none of its lines
// and so cannot tell it what it lost; its round with her must not let the
// node's lines go. The peer that holds them, Bob, is back a moment later,
// and the line typed at start goes out after the lines he holds.
func TestARestoredNodeWaitsForAPeerThatHoldsItsLines(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bobPort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	atBobsPort := func(cfg *Config) { cfg.Port = bobPort }
	bobDir := t.TempDir()
	bob := netTestStartIn(t, bobDir, "Bob", atBobsPort)
	alice := netTestStart(t, "Alice", netTestSeeds(bob))
	netTestWaitFor(t, 5*time.Second, "Alice and Bob connected", func() bool { return alice.connectedTo(bob) && bob.connectedTo(alice) })
	backup := restoreTestBackup(t, alice, bob)
	bob.stop()
	bob.log.Close()
	bob.st.Close()

	carol := netTestStart(t, "Carol", nil)
	restored := netTestStartIn(t, backup, "Alice", netTestSeeds(carol))
	restored.say(t, "typed at once after the restore")
	netTestWaitFor(t, 10*time.Second, "a round of the restored node's with Carol ended", func() bool {
		restored.mu.Lock()
		defer restored.mu.Unlock()
		c := restored.conns[carol.ID()]
		return c != nil && c.cu.roundsBegun.Load() > 0 && !c.cu.busy()
	})
	bob = netTestStartIn(t, bobDir, "Bob", atBobsPort)
	netTestWaitFor(t, 10*time.Second, "Bob showing the line typed after the restore", func() bool {
		return bob.display.saw("typed at once after the restore")
	})
	for _, n := range []*netTestNode{restored, bob, carol} {
		if forks := n.logs.lines("origin forked its chain; message refused"); len(forks) > 0 {
			t.Errorf("%s refused %d lines as forks: %v", n.Name(), len(forks), forks)
		}
	}
}

// TestLinesLeftOutDuringTheHoldReachThePeerThatAsked: while its own
// lines are held at start, a node passes none of them on in catch-up; a
// newcomer who asked meanwhile gets them once they go, not at its next
// round a minute later.
func TestLinesLeftOutDuringTheHoldReachThePeerThatAsked(t *testing.T) {
	dir := t.TempDir()
	alice := netTestStartIn(t, dir, "Alice", nil)
	alice.say(t, "said before the restart")
	netTestWaitFor(t, 5*time.Second, "Alice showing her line", func() bool { return alice.display.saw("said before the restart") })
	alice.stop()
	alice.log.Close()
	alice.st.Close()

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := gone.Addr().String()
	gone.Close()
	alice = netTestStartIn(t, dir, "Alice", func(cfg *Config) {
		cfg.Seeds = []string{addr}
		cfg.FirstCatchupWait = 500 * time.Millisecond
	})
	dave := netTestStart(t, "Dave", netTestSeeds(alice))
	netTestWaitFor(t, 10*time.Second, "Dave holding Alice's line", func() bool {
		events, err := dave.log.ByOrigin(alice.ID(), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		return len(events) == 1
	})
	if dave.cfg.SyncInterval < time.Minute {
		t.Fatalf("Dave's sync interval is %v: his next round would bring the line anyway", dave.cfg.SyncInterval)
	}
}

// restoreTestBackup has Alice say two lines, copies her data directory,
// has her say two more, and stops her once Bob showed them: it returns
// the directory of the copy, which lacks her last two lines.
func restoreTestBackup(t *testing.T, alice, bob *netTestNode) (backup string) {
	t.Helper()
	alice.say(t, "one")
	alice.say(t, "two")
	netTestWaitFor(t, 5*time.Second, "Bob showing Alice's first two lines", func() bool { return bob.display.saw("two") })
	backup = t.TempDir()
	if err := alice.st.View(func(tx *bolt.Tx) error {
		return tx.CopyFile(filepath.Join(backup, store.FileName), 0o600)
	}); err != nil {
		t.Fatal(err)
	}
	alice.say(t, "three")
	alice.say(t, "four")
	netTestWaitFor(t, 5*time.Second, "Bob showing Alice's last two lines", func() bool { return bob.display.saw("four") })
	alice.stop()
	return backup
}

// TestOwnLinesWaitForTheFirstCatchupOnlyWhenThereIsAPeerToAsk: a node
// that knows no peer sends its first line at once; one whose only peer
// cannot be reached holds it, says so, and sends it once
// Config.FirstCatchupWait is over.
func TestOwnLinesWaitForTheFirstCatchupOnlyWhenThereIsAPeerToAsk(t *testing.T) {
	holding := func(d *netTestDisplay) bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return slices.ContainsFunc(d.system, func(s string) bool { return strings.HasPrefix(s, "catching up with peers") })
	}

	alone := netTestStart(t, "Alone", func(cfg *Config) { cfg.FirstCatchupWait = time.Hour })
	alone.say(t, "nobody to ask")
	netTestWaitFor(t, 5*time.Second, "the line of a node that knows no peer shown", func() bool { return alone.display.saw("nobody to ask") })
	if holding(alone.display) {
		t.Error("a node that knows no peer held its line")
	}

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := gone.Addr().String()
	gone.Close()
	waiting := netTestStart(t, "Waiting", func(cfg *Config) {
		cfg.Seeds = []string{addr}
		cfg.FirstCatchupWait = 300 * time.Millisecond
	})
	start := time.Now()
	waiting.say(t, "held a moment")
	netTestWaitFor(t, 5*time.Second, "the held line shown", func() bool { return waiting.display.saw("held a moment") })
	if !holding(waiting.display) {
		t.Error("the node held its line without saying so")
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("the line went out after %v, before the wait of 300ms was over", waited)
	}
}
