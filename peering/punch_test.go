package peering

import (
	"crypto/tls"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/peering/wire"
)

// punchTestCoordinator listens as a node the victim dials with key, and
// hands over the connection once JOINs have been exchanged.
func punchTestCoordinator(t *testing.T) (addr string, peer <-chan *netTestPeer) {
	t.Helper()
	key, id := netTestNewKey(t)
	cert, err := NewCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *netTestPeer, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { c.Close() })
		tc := c.(*tls.Conn)
		p := &netTestPeer{key: key, id: id, tc: tc, fr: wire.NewFrameReader(tc, 0)}
		if typ, _, err := p.next(5 * time.Second); err != nil || typ != wire.FrameJoin {
			return
		}
		if p.join("Coordinator") != nil {
			return
		}
		ch <- p
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), ch
}

// punchTestAsk sends the punches a coordinator would, then a PING, and
// waits for its PONG, by when the victim has handled every PUNCH.
func punchTestAsk(t *testing.T, p *netTestPeer, punches []wire.PunchMsg) {
	t.Helper()
	for _, m := range punches {
		if err := p.write(wire.FramePunch, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.write(wire.FramePing, wire.PingMsg{Nonce: 7}); err != nil {
		t.Fatal(err)
	}
	for {
		typ, _, err := p.next(5 * time.Second)
		if err != nil {
			t.Fatalf("the victim dropped a peer for PUNCH frames: %v", err)
		}
		if typ == wire.FramePong {
			return
		}
	}
}

// punchTestStarted is how many punches the victim started.
func punchTestStarted(n *netTestNode) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.punches.last)
}

// punchTestTargets are PUNCH frames naming fresh IDs at count addresses on
// loopback where nothing listens.
func punchTestTargets(t *testing.T, count int) []wire.PunchMsg {
	out := make([]wire.PunchMsg, count)
	for i := range out {
		_, id := netTestNewKey(t)
		out[i] = wire.PunchMsg{ID: id, Name: "Someone", Addr: fmt.Sprintf("127.0.0.1:%d", i+1)}
	}
	return out
}

func TestACoordinatorCannotMakeTheNodePunchWithoutBound(t *testing.T) {
	if !canPunch {
		t.Skip("no SO_REUSEPORT here: the node does not punch")
	}
	addr, peer := punchTestCoordinator(t)
	victim := netTestStart(t, "Victim", func(cfg *Config) {
		cfg.Seeds = []string{addr}
		cfg.HandshakeTimeout = 300 * time.Millisecond
	})
	var coordinator *netTestPeer
	select {
	case coordinator = <-peer:
	case <-time.After(10 * time.Second):
		t.Fatal("the victim never dialed the coordinator")
	}
	// The coordinator says the victim cannot be dialed, as it would after
	// a failed dial-back, and asks for 50 punches.
	if err := coordinator.write(wire.FrameReach, wire.ReachMsg{Addr: "192.0.2.1:7000", Reachable: false}); err != nil {
		t.Fatal(err)
	}
	const asked = 50
	punchTestAsk(t, coordinator, punchTestTargets(t, asked))
	if got := punchTestStarted(victim); got == 0 || got > maxPunchIntros {
		t.Errorf("one coordinator's %d PUNCH frames started %d punches, want 1 to %d", asked, got, maxPunchIntros)
	}
	netTestWaitFor(t, 5*time.Second, "the punches to end", func() bool {
		victim.mu.Lock()
		defer victim.mu.Unlock()
		return victim.punches.inFlight == 0
	})
}

func TestAPeerThatDialedInCannotMakeTheNodePunch(t *testing.T) {
	victim := netTestStart(t, "Victim", nil)
	key, _ := netTestNewKey(t)
	mallory := netTestDialTLS(t, victim.Addr().String(), key)
	if err := mallory.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	if err := mallory.write(wire.FrameReach, wire.ReachMsg{Addr: "192.0.2.1:7000", Reachable: false}); err != nil {
		t.Fatal(err)
	}
	punchTestAsk(t, mallory, punchTestTargets(t, 10))
	if got := punchTestStarted(victim); got != 0 {
		t.Errorf("a peer that dialed in started %d punches, want none: only a peer this node dialed coordinates", got)
	}
}

func TestAMalformedPunchEndsTheConnection(t *testing.T) {
	victim := netTestStart(t, "Victim", nil)
	key, _ := netTestNewKey(t)
	mallory := netTestDialTLS(t, victim.Addr().String(), key)
	if err := mallory.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	_, id := netTestNewKey(t)
	if err := mallory.write(wire.FramePunch, wire.PunchMsg{ID: id, Name: "Someone", Addr: "not an address"}); err != nil {
		t.Fatal(err)
	}
	if err := hostileTestClosed(mallory.tc, 5*time.Second); err != nil {
		t.Errorf("a PUNCH with a bad address left the connection open: %v", err)
	}
}
