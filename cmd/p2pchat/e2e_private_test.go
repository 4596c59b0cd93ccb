package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/e2e"
	"github.com/p2pchat/p2pchat/store"
)

// Private messages travel sealed through whatever chain of peers there
// is, as a person at the keyboard of each node sees them.

// privateWithin is how soon a private message must reach its recipient.
var privateWithin = e2e.Scaled(5 * time.Second)

// readDatabase returns the bytes of the database file in dir.
func readDatabase(t *testing.T, dir string) []byte {
	t.Helper()
	db, err := os.ReadFile(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// knownNames returns the names in the peer table of the node in dir.
func knownNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, p := range jsonLines(t, "peers", "--data-dir", dir, "--json") {
		names = append(names, fmt.Sprint(p["name"]))
	}
	return names
}

// waitKnows waits until n's peer table has every one of names.
func waitKnows(t *testing.T, n *e2e.Node, names ...string) {
	t.Helper()
	e2e.WaitFor(t, e2e.Patience, func() bool {
		known := knownNames(t, n.DataDir)
		return !slices.ContainsFunc(names, func(name string) bool { return !slices.Contains(known, name) })
	}, fmt.Sprintf("%s to know of %v", n.Name, names))
}

// sendPrivate has from send text to to and waits, privateWithin at most,
// until to shows it.
func sendPrivate(t *testing.T, from, to *e2e.Node, text string) {
	t.Helper()
	from.Send("/msg " + to.Name + " " + text)
	e2e.WaitFor(t, privateWithin, func() bool {
		return to.CountLines(privateLine(from.Name, text)) > 0
	}, fmt.Sprintf("%s to show the private message from %s", to.Name, from.Name))
}

func TestPrivateMessagesCrossAPartialMeshSealedFromTheNodeBetween(t *testing.T) {
	t.Parallel()
	alice := startNode(t, "Alice", "--max-peers", "1")
	bob := startNode(t, "Bob", "--max-peers", "2", "--peer", alice.Addr())
	carol := startNode(t, "Carol", "--max-peers", "1", "--peer", bob.Addr())
	bob.WaitUsers(alice, carol)
	waitKnows(t, alice, "Carol")
	waitKnows(t, carol, "Alice")

	const there, back = "the eagle lands at noon", "the nest is empty"
	sendPrivate(t, alice, carol, there)
	sendPrivate(t, carol, alice, back)
	alice.WaitLine(deliveredLine("Carol", there))
	carol.WaitLine(deliveredLine("Alice", back))
	alice.WaitLine(sentLine("Carol", "Alice", there))
	carol.WaitLine(sentLine("Alice", "Carol", back))

	if users, _ := alice.Users(); listsName(users, "Carol") {
		t.Fatal("Alice and Carol are connected directly; the test needs Bob between them")
	}
	// Bob has relayed both messages and both acknowledgements.
	e2e.WaitFor(t, e2e.Patience, func() bool {
		types := eventTypes(t, bob.DataDir)
		return types["SEALED"] == 2 && types["ACK"] == 2
	}, "Bob to hold both private messages and both acknowledgements")
	// Each end keeps both messages in its history, sealed on disk.
	for _, end := range []struct {
		n                *e2e.Node
		other, sent, got string
	}{{alice, "Carol", there, back}, {carol, "Alice", back, there}} {
		out := strings.Join(end.n.Command("/history"), "\n")
		if !strings.Contains(out, sentLine(end.other, end.n.Name, end.sent)) || !strings.Contains(out, privateLine(end.other, end.got)) {
			t.Errorf("%s's /history shows %q, want both private messages", end.n.Name, out)
		}
	}
	for _, n := range []*e2e.Node{alice, bob, carol} {
		n.Quit()
	}
	if out := strings.Join(p2pchat.Run(t, "history", "--data-dir", alice.DataDir).Lines(), "\n"); !strings.Contains(out, sentLine("Carol", "Alice", there)) {
		t.Errorf("p2pchat history of Alice shows %q, want her message to Carol", out)
	}
	if out := p2pchat.Run(t, "history", "--data-dir", bob.DataDir).Lines(); len(out) != 0 {
		t.Errorf("Bob's history shows %q, want nothing: the private messages are not his", out)
	}
	for _, text := range []string{there, back} {
		if c := bob.CountLines(text); c != 0 {
			t.Errorf("Bob printed %q %d times, want never", text, c)
		}
		for _, n := range []*e2e.Node{alice, bob, carol} {
			if bytes.Contains(readDatabase(t, n.DataDir), []byte(text)) {
				t.Errorf("%s's database file holds %q in the clear", n.Name, text)
			}
		}
	}
}

func TestAPrivateMessageWaitsInTheMeshWhileBothEndsAreAway(t *testing.T) {
	t.Parallel()
	alice, bob, carol := startChain(t)

	carol.Quit()
	alice.WaitLine("*** Carol left")
	const text = "read this when you are back"
	alice.Send("/msg Carol " + text)
	alice.WaitLine(sentLine("Carol", "Alice", text))
	e2e.WaitFor(t, e2e.Patience, func() bool { return eventTypes(t, bob.DataDir)["SEALED"] == 1 },
		"Bob to hold the message for Carol")
	alice.Quit()
	bob.WaitLine("*** Alice left")

	// Neither Alice nor anything she sent is there but Bob's copy.
	carol = restart(t, carol.DataDir)
	carol.WaitLine(privateLine("Alice", text))
	alice = restart(t, alice.DataDir)
	alice.WaitLine(deliveredLine("Carol", text))
	fence(t, "back", alice, bob, carol)
	if c := carol.CountLines(privateLine("Alice", text)); c != 1 {
		t.Errorf("Carol shows the message %d times, want once", c)
	}
	if c := bob.CountLines(text); c != 0 {
		t.Errorf("Bob shows the message for Carol %d times, want never", c)
	}
	for _, n := range []*e2e.Node{alice, bob, carol} {
		n.Quit()
		checkVerifyClean(t, n.Name, n.DataDir)
	}
}

func TestAPrivateMessageFromOneOfTwentyNodesReachesEachOther(t *testing.T) {
	rnd := treeRand(t)

	nodes := startTree(t, rnd)
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	from := nodes[rnd.IntN(scaleNodes)]
	waitKnows(t, from, slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == from.Name })...)

	var slowest time.Duration
	for _, to := range nodes {
		if to == from {
			continue
		}
		began := time.Now()
		sendPrivate(t, from, to, "for your eyes only, "+to.Name)
		slowest = max(slowest, time.Since(began))
	}
	from.WaitCount("*** delivered to n", scaleNodes-1)
	for _, n := range nodes {
		if n == from {
			continue
		}
		if c := n.CountLines("[private]"); c != 1 {
			t.Errorf("%s shows %d private messages, want its own one", n.Name, c)
		}
	}
	t.Logf("%d processes, --max-peers %d: %d private messages from %s, slowest arrived in %v",
		scaleNodes, scaleMaxPeers, scaleNodes-1, from.Name, slowest.Round(time.Millisecond))
}

func TestPrivateMessagesOfAnEarlierReleaseStillShowInHistory(t *testing.T) {
	t.Parallel()
	// A log as an earlier release left it: direct messages stored in the
	// clear at both ends, and a delivery receipt.
	dir := newDataDir(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	_, bobKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := eventlog.IDFromKey(bobKey.Public().(ed25519.PublicKey))
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	_, err = l.Append(context.Background(),
		eventlog.Join{ID: bob, Name: "Bob", Version: 1},
		eventlog.Private{From: l.Self(), To: bob, Name: "Alice", Text: "sent the old way", SentTime: at},
		eventlog.Delivered{To: bob, Seq: 2},
		eventlog.Private{From: bob, To: l.Self(), Name: "Bob", Text: "answered the old way", SentTime: at.Add(time.Minute), Ref: 4},
	)
	l.Close()
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	out := strings.Join(p2pchat.Run(t, "history", "--data-dir", dir).Lines(), "\n")
	for _, want := range []string{sentLine("Bob", "Alice", "sent the old way"), privateLine("Bob", "answered the old way")} {
		if !strings.Contains(out, want) {
			t.Errorf("history shows %q, want a line with %q", out, want)
		}
	}
	types := eventTypes(t, dir)
	if types["PRIVATE"] != 2 || types["DELIVERED"] != 1 {
		t.Errorf("events lists %v, want 2 PRIVATE and 1 DELIVERED", types)
	}
	checkVerifyClean(t, "the old log", dir)
}
