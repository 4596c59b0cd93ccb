package peering

import (
	"net"
	"strconv"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// A caller that fails between Listen and Run (p2pchat run, when its web
// port is taken) gives the port back.
func TestAListenerANodeNeverRanWithIsReleased(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := st.Identity()
	if err != nil {
		t.Fatal(err)
	}
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	cfg := DefaultConfig()
	cfg.Name, cfg.Key, cfg.ListenHost = "alice", key, "127.0.0.1"
	n, err := New(cfg, lg, &netTestDisplay{})
	if err != nil {
		t.Fatal(err)
	}
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
