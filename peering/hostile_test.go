package peering

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/peering/wire"
)

// hostileTestOpen counts the node's TCP connections of any state.
func hostileTestOpen(n *Node) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.open
}

// hostileTestClosed reports whether the node closed c: a read ends in EOF
// or a reset rather than the test's own deadline.
func hostileTestClosed(c net.Conn, timeout time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		switch {
		case err == nil:
			continue // whatever the node said before closing
		case errors.Is(err, os.ErrDeadlineExceeded):
			return errors.New("still open")
		default:
			return nil // io.EOF, or a reset: closed either way
		}
	}
}

// hostileTestDial opens a plain TCP connection to n.
func hostileTestDial(t *testing.T, n *netTestNode) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestIdleConnectionsTimeOutAndLeaveRoomForHonestPeers(t *testing.T) {
	const idle = 200
	hub := netTestStart(t, "Hub", func(cfg *Config) {
		cfg.HandshakeTimeout = 300 * time.Millisecond
		// Room for the idle connections and little else: the honest
		// peers get in only once the handshake timeout frees slots.
		cfg.MaxConns = idle + 1
		cfg.MaxConnsPerIP = 1000
	})
	conns := make([]net.Conn, idle)
	for i := range conns {
		conns[i] = hostileTestDial(t, hub)
	}
	// The idle ones may already be timing out; at least most must have
	// been accepted before the honest peers arrive.
	netTestWaitFor(t, 5*time.Second, "the hub holds the idle connections", func() bool {
		return hostileTestOpen(hub.Node) >= idle/2
	})

	b := netTestStart(t, "Bob", netTestSeeds(hub))
	c := netTestStart(t, "Carol", netTestSeeds(hub))
	netTestWaitFor(t, 20*time.Second, "Bob and Carol connected through the hub", func() bool {
		return hub.connectedTo(b) && hub.connectedTo(c)
	})
	b.say(t, "through the crowd")
	netTestWaitFor(t, 10*time.Second, "Carol shows Bob's line", func() bool { return c.display.saw("through the crowd") })

	for i, conn := range conns {
		if err := hostileTestClosed(conn, 5*time.Second); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
	}
	// Two hundred timeouts from one address make a line or two, not two
	// hundred.
	if got := len(hub.logs.lines("handshake failed")); got > 5 {
		t.Errorf("the hub logged %d handshake failures for one address", got)
	}
}

func TestGarbageFromStrangersDoesNotStopDelivery(t *testing.T) {
	a := netTestStart(t, "Alice", nil)
	b := netTestStart(t, "Bob", netTestSeeds(a))
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return a.connectedTo(b) && b.connectedTo(a)
	})

	noise := make([]byte, 8<<10)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	key, _ := netTestNewKey(t)
	attacks := []struct {
		name string
		run  func(t *testing.T) net.Conn
	}{
		{"random bytes", func(t *testing.T) net.Conn {
			c := hostileTestDial(t, a)
			_, _ = c.Write(noise)
			return c
		}},
		{"an oversized line before TLS", func(t *testing.T) net.Conn {
			c := hostileTestDial(t, a)
			_, _ = c.Write(bytes.Repeat([]byte{'A'}, 2*wire.DefaultMaxFrame))
			return c
		}},
		{"a plaintext CHAT frame", func(t *testing.T) net.Conn {
			c := hostileTestDial(t, a)
			_, _ = io.WriteString(c, "CHAT|{}\n")
			return c
		}},
		{"a CHAT frame before JOIN", func(t *testing.T) net.Conn {
			p := netTestDialTLS(t, a.Addr().String(), key)
			if err := p.write(wire.FrameChat, netTestChat(key, 1, "who needs a JOIN")); err != nil {
				t.Fatal(err)
			}
			return p.tc
		}},
		{"an oversized frame after JOIN", func(t *testing.T) net.Conn {
			p := netTestDialTLS(t, a.Addr().String(), key)
			if err := p.join("Mallory"); err != nil {
				t.Fatal(err)
			}
			big := "CHAT|" + strings.Repeat("x", wire.DefaultMaxFrame) + "\n"
			_ = p.tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(p.tc, big)
			return p.tc
		}},
		{"a forged CHAT after JOIN", func(t *testing.T) net.Conn {
			p := netTestDialTLS(t, a.Addr().String(), key)
			if err := p.join("Mallory"); err != nil {
				t.Fatal(err)
			}
			forged := netTestChat(key, 2, "signed by someone else")
			forged.Text = "words put in Mallory's mouth"
			_ = p.write(wire.FrameChat, forged)
			return p.tc
		}},
	}
	for i, attack := range attacks {
		t.Run(attack.name, func(t *testing.T) {
			c := attack.run(t)
			if err := hostileTestClosed(c, 10*time.Second); err != nil {
				t.Errorf("the node kept the connection: %v", err)
			}
			line := "still delivering " + string(rune('A'+i))
			b.say(t, line)
			netTestWaitFor(t, 10*time.Second, "Alice shows Bob's line", func() bool { return a.display.saw(line) })
			a.say(t, line+" back")
			netTestWaitFor(t, 10*time.Second, "Bob shows Alice's line", func() bool { return b.display.saw(line + " back") })
		})
	}
	if a.display.saw("who needs a JOIN") || a.display.saw("words put in Mallory's mouth") {
		t.Error("Alice showed a line from a peer that broke the protocol")
	}
	if !a.connectedTo(b) {
		t.Error("Alice lost Bob")
	}
}

func TestADialThatReachesABannedPeerFreesItsDialSlot(t *testing.T) {
	a := netTestStart(t, "A", nil)
	b := netTestStart(t, "B", netTestSeeds(a))
	netTestWaitFor(t, 5*time.Second, "B to connect", func() bool { return a.connectedTo(b) && a.knows(t, b.ID()) })
	if err := a.Kick(context.Background(), "B"); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 5*time.Second, "B to be gone", func() bool { return !a.connectedTo(b) })
	if err := a.Connect(context.Background(), b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	key := "seed " + b.Addr().String()
	netTestWaitFor(t, 5*time.Second, "the dial to end", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		tg := a.targets[key]
		return tg != nil && tg.failures > 0 && !tg.dialing && a.dialing == 0
	})
}

func TestABannedPeerBacksOffInsteadOfRedialingAtTheBaseDelay(t *testing.T) {
	a := netTestStart(t, "A", nil)
	b := netTestStart(t, "B", netTestSeeds(a))
	netTestWaitFor(t, 5*time.Second, "B to connect", func() bool { return a.connectedTo(b) && a.knows(t, b.ID()) })
	if err := a.Kick(context.Background(), "B"); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 5*time.Second, "B's redials of A to back off", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		tg := b.targets[a.ID().String()]
		return tg != nil && tg.failures >= 3
	})
}
