package repl

import (
	"fmt"
	"testing"
)

// reachNode is a node that knows how its peers see it.
type reachNode struct {
	basicNode
	seen map[string]bool
}

func (n *reachNode) Reach() map[string]bool { return n.seen }

func TestListSaysHowPeersSeeThisNode(t *testing.T) {
	node := &reachNode{seen: map[string]bool{"203.0.113.7:8080": false, "198.51.100.2:8080": true}}
	out := runScript(t, node, "/l\n")
	want := []string{
		"*** no one else is connected",
		"*** peers see this node at 198.51.100.2:8080 and can dial it there",
		"*** peers see this node at 203.0.113.7:8080 but cannot dial it there (NAT or firewall)",
	}
	if fmt.Sprintf("%q", out) != fmt.Sprintf("%q", want) {
		t.Errorf("output = %q\nwant     %q", out, want)
	}
}
