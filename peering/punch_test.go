package peering

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/peering/wire"
)

func TestAPeerCannotMakeTheNodePunchWithoutBound(t *testing.T) {
	if !canPunch {
		t.Skip("no SO_REUSEPORT here: the node does not punch")
	}
	// The sink stands for the addresses a hostile peer names: it counts
	// the connections the node opens to it and never answers.
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { sink.Close(); wg.Wait() })

	victim := netTestStart(t, "Victim", func(cfg *Config) { cfg.HandshakeTimeout = 300 * time.Millisecond })
	key, _ := netTestNewKey(t)
	mallory := netTestDialTLS(t, victim.Addr().String(), key)
	if err := mallory.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	const asked = 50
	for range asked {
		_, id := netTestNewKey(t)
		if err := mallory.write(wire.FramePunch, wire.PunchMsg{ID: id, Name: "Someone", Addr: sink.Addr().String()}); err != nil {
			t.Fatal(err)
		}
	}
	// A PING answered after the PUNCH frames shows they were all read.
	if err := mallory.write(wire.FramePing, wire.PingMsg{Nonce: 7}); err != nil {
		t.Fatal(err)
	}
	for {
		typ, _, err := mallory.next(5 * time.Second)
		if err != nil {
			t.Fatalf("the victim dropped a peer for PUNCH frames: %v", err)
		}
		if typ == wire.FramePong {
			break
		}
	}
	netTestWaitFor(t, 5*time.Second, "the punches to end", func() bool {
		victim.mu.Lock()
		defer victim.mu.Unlock()
		return victim.punches.inFlight == 0 && accepted.Load() > 0
	})
	if got := accepted.Load(); got > maxPunchIntros {
		t.Errorf("one peer's %d PUNCH frames made the node open %d connections, bound %d", asked, got, maxPunchIntros)
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
