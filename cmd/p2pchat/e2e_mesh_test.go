package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// startChain starts Alice, Bob (--peer Alice) and Carol (--peer Bob) and
// waits until they form a full mesh: each lists exactly the two others.
func startChain(t *testing.T) (alice, bob, carol *e2e.Node) {
	t.Helper()
	alice = startNode(t, "Alice")
	bob = startNode(t, "Bob", "--peer", alice.Addr())
	carol = startNode(t, "Carol", "--peer", bob.Addr())
	waitMesh(t, alice, bob, carol)
	return alice, bob, carol
}

// waitMesh waits until every node lists exactly all the others on /l.
func waitMesh(t *testing.T, nodes ...*e2e.Node) {
	t.Helper()
	for _, n := range nodes {
		others := slices.DeleteFunc(slices.Clone(nodes), func(o *e2e.Node) bool { return o == n })
		n.WaitUsers(others...)
	}
}

// chatLine is how a chat line from name with text reads at any node.
func chatLine(name, text string) string { return "<" + name + "> " + text }

// sayLines sends count numbered lines from n, texts unique per node and
// round, and returns them as chat lines.
func sayLines(n *e2e.Node, round string, count int) []string {
	var out []string
	for i := range count {
		text := fmt.Sprintf("%s-%s-line-%02d", strings.ToLower(n.Name), round, i)
		n.Send(text)
		out = append(out, chatLine(n.Name, text))
	}
	return out
}

// fence makes sure that what was relayed before has arrived: each node
// sends one more line, and every node waits for all of them. A duplicate
// of an earlier line still in flight would show before the fences.
func fence(t *testing.T, round string, nodes ...*e2e.Node) {
	t.Helper()
	var lines []string
	for _, n := range nodes {
		lines = append(lines, sayLines(n, round+"-fence", 1)...)
	}
	for _, n := range nodes {
		for _, l := range lines {
			n.WaitLine(l)
		}
	}
}

// checkOnce fails the test unless every line shows exactly once at n.
func checkOnce(t *testing.T, n *e2e.Node, lines []string) {
	t.Helper()
	for _, l := range lines {
		if c := n.CountLines(l); c != 1 {
			t.Errorf("%s shows %q %d times, want once", n.Name, l, c)
		}
	}
}

func TestThreeChainedNodesBecomeAFullMeshAndDeliverEveryLineOnce(t *testing.T) {
	t.Parallel()
	alice, bob, carol := startChain(t)
	nodes := []*e2e.Node{alice, bob, carol}

	var all []string
	for _, n := range nodes {
		all = append(all, sayLines(n, "mesh", 20)...)
	}
	for _, n := range nodes {
		for _, l := range all {
			n.WaitLine(l)
		}
	}
	fence(t, "mesh", nodes...)
	for _, n := range nodes {
		checkOnce(t, n, all)
	}

	// Carol learnt of Alice only through Bob's PEERS; her own names both.
	var payload struct {
		Peers []struct {
			ID    string   `json:"id"`
			Name  string   `json:"name"`
			Addrs []string `json:"addrs"`
		} `json:"peers"`
	}
	var js string
	for _, l := range carol.Command("/p") {
		if strings.HasPrefix(l, "{") {
			js = l
		}
	}
	if err := json.Unmarshal([]byte(js), &payload); err != nil {
		t.Errorf("/p printed %q, not a JSON PEERS payload: %v", js, err)
	}
	var listed []string
	for _, p := range payload.Peers {
		listed = append(listed, p.Name+" "+p.ID[:min(8, len(p.ID))])
	}
	slices.Sort(listed)
	if want := []string{"Alice " + alice.ShortID, "Bob " + bob.ShortID}; !slices.Equal(listed, want) {
		t.Errorf("Carol's /p lists %v, want %v", listed, want)
	}

	for _, n := range nodes {
		n.Quit()
	}
	for _, n := range nodes {
		res := p2pchat.Run(t, "verify", "--data-dir", n.DataDir)
		if res.Code != 0 {
			t.Errorf("verify on %s exited %d:\n%s%s", n.Name, res.Code, res.Stdout, res.Stderr)
		}
		var known []string
		for _, p := range jsonLines(t, "peers", "--data-dir", n.DataDir, "--json") {
			known = append(known, fmt.Sprint(p["name"]))
		}
		slices.Sort(known)
		others := slices.DeleteFunc([]string{"Alice", "Bob", "Carol"}, func(s string) bool { return s == n.Name })
		if !slices.Equal(known, others) {
			t.Errorf("peers --json on %s lists %v, want %v", n.Name, known, others)
		}
	}
}

func TestThreeNodesReconnectAndChatAfterARestartWithoutPeerFlags(t *testing.T) {
	t.Parallel()
	alice, bob, carol := startChain(t)
	nodes := []*e2e.Node{alice, bob, carol}
	var before []string
	for _, n := range nodes {
		before = append(before, sayLines(n, "before", 3)...)
	}
	for _, n := range nodes {
		for _, l := range before {
			n.WaitLine(l)
		}
	}
	for _, n := range nodes {
		n.Quit()
	}

	var again []*e2e.Node
	for _, n := range nodes {
		r := restart(t, n.DataDir)
		if r.ShortID != n.ShortID || r.Port != n.Port {
			t.Fatalf("%s came back as %s on port %d, want %s on port %d", n.Name, r.ShortID, r.Port, n.ShortID, n.Port)
		}
		again = append(again, r)
	}
	for _, n := range again {
		for _, o := range again {
			if o != n {
				n.WaitLine("*** " + o.Name + " joined")
			}
		}
	}
	waitMesh(t, again...)

	carolAfter := sayLines(again[2], "after", 1)
	for _, n := range again {
		n.WaitLine(carolAfter[0])
	}
	fence(t, "after", again...)
	for _, n := range again {
		checkOnce(t, n, carolAfter)
		n.Quit()
	}

	// What was said before the restart, what Carol said after it, and
	// the fence lines: once each in every node's history.
	var want []string
	want = append(want, before...)
	want = append(want, carolAfter...)
	for _, n := range again {
		want = append(want, chatLine(n.Name, strings.ToLower(n.Name)+"-after-fence-line-00"))
	}
	for _, n := range again {
		got := historyTexts(t, n.DataDir)
		for _, l := range want {
			if c := countEqual(got, l); c != 1 {
				t.Errorf("history of %s has %q %d times, want once", n.Name, l, c)
			}
		}
		if len(got) != len(want) {
			t.Errorf("history of %s has %d lines, want %d:\n%s", n.Name, len(got), len(want), strings.Join(got, "\n"))
		}
	}
}

func countEqual(lines []string, s string) int {
	c := 0
	for _, l := range lines {
		if l == s {
			c++
		}
	}
	return c
}

func TestANodeToldToDialItselfListsNoOneAndStaysUp(t *testing.T) {
	t.Parallel()
	first := startNode(t, "Alice")
	first.Quit()
	alice := restart(t, first.DataDir, "--peer", first.Addr())
	// The dial to itself has been tried once the node logs the address.
	alice.WaitStderr(strconv.Quote(first.Addr()))
	users, nobody := alice.Users()
	if len(users) != 0 || !nobody {
		t.Errorf("/l lists %v (no-one line: %v), want only the line saying no one else is connected", users, nobody)
	}
	alice.Send("alone but fine")
	alice.WaitLine("<Alice> alone but fine")
	if users, _ := alice.Users(); len(users) != 0 {
		t.Errorf("/l lists %v later, want no one", users)
	}
	alice.Quit()
}

func TestTwoNodesDialingEachOtherAtOnceKeepOneConnection(t *testing.T) {
	t.Parallel()
	portA, portB := e2e.FreePort(t), e2e.FreePort(t)
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	alice := p2pchat.Start(t, "--port", strconv.Itoa(portA), "--uname", "Alice", "--data-dir", newDataDir(t), "--peer", addr(portB))
	bob := p2pchat.Start(t, "--port", strconv.Itoa(portB), "--uname", "Bob", "--data-dir", newDataDir(t), "--peer", addr(portA))
	alice.WaitListening()
	bob.WaitListening()

	alice.WaitUsers(bob)
	bob.WaitUsers(alice)
	// Whatever connection lost the race has been closed by now: a line
	// each way has made the round.
	fence(t, "race", alice, bob)
	for _, pair := range [][2]*e2e.Node{{alice, bob}, {bob, alice}} {
		n, other := pair[0], pair[1]
		users := n.WaitUsers(other)
		if len(users) != 1 {
			t.Errorf("%s lists %v, want only %s", n.Name, users, other.Name)
		}
		if c := n.CountLines("*** " + other.Name + " joined"); c != 1 {
			t.Errorf("%s shows %s joined %d times, want once", n.Name, other.Name, c)
		}
		if c := n.CountLines("*** " + other.Name + " left"); c != 0 {
			t.Errorf("%s shows %s left %d times, want never", n.Name, other.Name, c)
		}
	}
	alice.Quit()
	bob.Quit()
}

func TestAnUnreachablePeerAtStartIsNotFatal(t *testing.T) {
	t.Parallel()
	port := e2e.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	alice := startNode(t, "Alice", "--peer", addr)
	e2e.WaitFor(t, e2e.Patience, func() bool {
		for _, l := range strings.Split(alice.Stderr(), "\n") {
			if strings.Contains(l, strconv.Quote(addr)) && strings.Contains(strings.ToLower(l), "dial") {
				return true
			}
		}
		return false
	}, "Alice to log the failed dial of "+addr)
	alice.Send("nobody hears this yet")
	alice.WaitLine("<Alice> nobody hears this yet")

	// The peer turns up later on that address: the redial finds it.
	bob := p2pchat.StartListening(t, "--port", strconv.Itoa(port), "--uname", "Bob", "--data-dir", newDataDir(t))
	alice.WaitLine("*** Bob joined")
	bob.WaitLine("*** Alice joined")
	alice.Send("there you are")
	bob.WaitLine("<Alice> there you are")
	alice.Quit()
	bob.Quit()
}
