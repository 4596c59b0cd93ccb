package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// scaleNodes and scaleMaxPeers size the end-to-end scaling test: enough
// processes that no node may connect to all others.
const (
	scaleNodes    = 20
	scaleMaxPeers = 6
)

// scaleGraph lists, per node, the short IDs of the peers its /l shows.
func scaleGraph(t *testing.T, nodes []*e2e.Node) map[string][]string {
	t.Helper()
	g := map[string][]string{}
	for _, n := range nodes {
		users, _ := n.Users()
		for _, u := range users {
			g[n.ShortID] = append(g[n.ShortID], u.ShortID)
		}
	}
	return g
}

// scaleReach is how many nodes are reachable from the first one, going
// over connections either side lists.
func scaleReach(nodes []*e2e.Node, g map[string][]string) int {
	adj := map[string][]string{}
	for a, peers := range g {
		for _, b := range peers {
			adj[a] = append(adj[a], b)
			adj[b] = append(adj[b], a)
		}
	}
	seen := map[string]bool{nodes[0].ShortID: true}
	queue := []string{nodes[0].ShortID}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		for _, b := range adj[a] {
			if !seen[b] {
				seen[b] = true
				queue = append(queue, b)
			}
		}
	}
	reached := 0
	for _, n := range nodes {
		if seen[n.ShortID] {
			reached++
		}
	}
	return reached
}

func TestTwentyProcessesJoinedInARandomTreeScaleWithinMaxPeersAndDeliverEachLineOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random tree seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))
	maxPeers := fmt.Sprint(scaleMaxPeers)

	began := time.Now()
	var nodes []*e2e.Node
	for i := range scaleNodes {
		args := []string{"--max-peers", maxPeers, "--replay", "0"}
		if i > 0 {
			args = append(args, "--peer", nodes[rnd.IntN(i)].Addr())
		}
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%02d", i), args...))
	}
	var g map[string][]string
	e2e.WaitFor(t, time.Minute, func() bool {
		g = scaleGraph(t, nodes)
		return scaleReach(nodes, g) == len(nodes)
	}, "the 20 nodes to form one connected network")
	formed := time.Since(began)

	// Three speakers, one line each; a fence line after them shows that
	// whatever was still in flight has arrived.
	var lines []string
	for _, i := range rnd.Perm(scaleNodes)[:3] {
		text := fmt.Sprintf("scale line from %s", nodes[i].Name)
		nodes[i].Send(text)
		lines = append(lines, chatLine(nodes[i].Name, text))
	}
	sent := time.Now()
	for _, n := range nodes {
		for _, l := range lines {
			n.WaitLine(l)
		}
	}
	delivered := time.Since(sent)
	fenced := nodes[rnd.IntN(scaleNodes)]
	fenceLine := sayLines(fenced, "scale-fence", 1)[0]
	for _, n := range nodes {
		n.WaitLine(fenceLine)
	}
	for _, n := range nodes {
		checkOnce(t, n, lines)
	}

	g = scaleGraph(t, nodes)
	total, most, joins, leaves := 0, 0, 0, 0
	for _, n := range nodes {
		d := len(g[n.ShortID])
		total += d
		most = max(most, d)
		if d > scaleMaxPeers {
			t.Errorf("%s lists %d users on /l, above --max-peers %d: %s", n.Name, d, scaleMaxPeers, strings.Join(g[n.ShortID], " "))
		}
		if slices.Contains(g[n.ShortID], n.ShortID) {
			t.Errorf("%s lists itself on /l", n.Name)
		}
		// Nobody left: a "left" line is a peer that refused a dial
		// because it was full, shown as joining and leaving.
		joins += n.CountLines(" joined")
		leaves += n.CountLines(" left")
	}
	t.Logf("%d processes, --max-peers %d: connected in %v, 3 lines everywhere in %v; connections per node mean %.2f, max %d; \"joined\" lines %d, \"left\" lines %d",
		scaleNodes, scaleMaxPeers, formed.Round(time.Millisecond), delivered.Round(time.Millisecond),
		float64(total)/scaleNodes, most, joins, leaves)
}
