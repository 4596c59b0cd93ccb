package peering

import (
	"net"
	"strconv"
	"testing"
)

// A caller that fails between Listen and Run (p2pchat run, when its web
// port is taken) gives the port back.
func TestAListenerANodeNeverRanWithIsReleased(t *testing.T) {
	n := dialerTestNode(t, func(cfg *Config) { cfg.ListenHost = "127.0.0.1" })
	if err := n.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port()))
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("%s was free while the node listened on it", addr)
	}
	n.CloseListener()
	n.CloseListener()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("after CloseListener: %v", err)
	}
	ln.Close()
}
