package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/e2e"
	"github.com/p2pchat/p2pchat/peering"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// Hostile peers and crashes, against real processes: garbage on the
// port, outsiders to a private network, a sender killed mid-paste.

// hostileDial opens a plain TCP connection to addr, closed when the test
// ends.
func hostileDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hostileClosed waits until the node has closed c: a read ends in EOF or
// a reset rather than the deadline. Whatever the node says before is
// read and dropped.
func hostileClosed(c net.Conn, timeout time.Duration) error {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("still open after %v", timeout)
		default:
			return nil
		}
	}
}

// hostileTLS completes the TLS handshake with a fresh identity of its own
// and returns the connection and that identity, as a node would before its
// first frame.
func hostileTLS(t *testing.T, addr string) (*tls.Conn, eventlog.NodeID) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return hostileTLSAs(t, addr, key)
}

// hostileTLSAs is hostileTLS with the identity key given.
func hostileTLSAs(t *testing.T, addr string, key ed25519.PrivateKey) (*tls.Conn, eventlog.NodeID) {
	t.Helper()
	cert, err := peering.NewCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := eventlog.IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(hostileDial(t, addr), peering.ClientConfig(cert))
	_ = tc.SetDeadline(time.Now().Add(e2e.Patience))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, id
}

// hostileFrame encodes one frame, failing the test on error.
func hostileFrame(t *testing.T, typ string, v any) []byte {
	t.Helper()
	frame, err := wire.EncodeFrame(typ, v, 0)
	if err != nil {
		t.Fatalf("encode %s: %v", typ, err)
	}
	return frame
}

// peerFullID returns the full node ID of the peer whose short ID is short,
// from the peer table of dir.
func peerFullID(t *testing.T, dir, short string) eventlog.NodeID {
	t.Helper()
	for _, p := range jsonLines(t, "peers", "--data-dir", dir, "--json") {
		if s := fmt.Sprint(p["id"]); strings.HasPrefix(s, short) {
			id, err := eventlog.ParseNodeID(s)
			if err != nil {
				t.Fatalf("peer id %q: %v", s, err)
			}
			return id
		}
	}
	t.Fatalf("no peer %s known in %s", short, dir)
	return eventlog.NodeID{}
}

func TestANodeFedGarbageAndIdleConnectionsKeepsDeliveringChat(t *testing.T) {
	t.Parallel()
	alice, bob := startPair(t)
	addr := alice.Addr()
	bobID := peerFullID(t, alice.DataDir, bob.ShortID)
	closedPort := e2e.FreePort(t)

	random := make([]byte, 64<<10)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	oversized := append(append([]byte("CHAT|"), bytes.Repeat([]byte("x"), 100<<10)...), '\n')
	plainChats := bytes.Repeat([]byte("CHAT|{}\n"), 1000)
	forged := hostileFrame(t, wire.FrameChat, wire.ChatMsg{
		Origin: bobID, Seq: 1 << 40, Time: time.Now().UnixNano(), Name: "Bob", Text: "forged by Mallory", Sig: make([]byte, ed25519.SignatureSize),
	})
	lyingJoin := hostileFrame(t, wire.FrameJoin, wire.JoinMsg{Version: wire.ProtocolVersion, ID: bobID, Name: "Bob", Port: closedPort})

	// Each attack is one connection, and the node must end each.
	type attack struct {
		name string
		run  func(t *testing.T) net.Conn
	}
	raw := func(payload []byte) func(t *testing.T) net.Conn {
		return func(t *testing.T) net.Conn {
			c := hostileDial(t, addr)
			_, _ = c.Write(payload) // the node may hang up before it has read it all
			return c
		}
	}
	// afterJoin introduces itself honestly over TLS as Mallory, then
	// sends payload.
	afterJoin := func(payload []byte) func(t *testing.T) net.Conn {
		return func(t *testing.T) net.Conn {
			tc, id := hostileTLS(t, addr)
			join := hostileFrame(t, wire.FrameJoin, wire.JoinMsg{Version: wire.ProtocolVersion, ID: id, Name: "Mallory", Port: closedPort})
			_, _ = tc.Write(append(join, payload...))
			return tc
		}
	}
	attacks := []attack{
		{"random bytes in place of TLS", raw(random)},
		{"an oversized plaintext line", raw(oversized)},
		{"plaintext CHAT frames", raw(plainChats)},
		{"random bytes after JOIN", afterJoin(random)},
		{"an oversized frame after JOIN", afterJoin(oversized)},
		{"an empty CHAT after JOIN", afterJoin([]byte("CHAT|{}\n"))},
		{"a CHAT forged in Bob's name", afterJoin(forged)},
		{"a JOIN that lies about its ID", func(t *testing.T) net.Conn {
			tc, _ := hostileTLS(t, addr)
			_, _ = tc.Write(lyingJoin)
			return tc
		}},
	}

	t.Run("garbage", func(t *testing.T) {
		conns := make([]net.Conn, len(attacks))
		for i, a := range attacks {
			conns[i] = a.run(t)
			fence(t, fmt.Sprintf("garbage-%d", i), alice, bob)
		}
		for i, c := range conns {
			if err := hostileClosed(c, e2e.Patience); err != nil {
				t.Errorf("connection with %s: %v, want it closed by the node", attacks[i].name, err)
			}
		}
		fence(t, "after-garbage", alice, bob)
		for _, n := range []*e2e.Node{alice, bob} {
			if c := n.CountLines("forged by Mallory"); c != 0 {
				t.Errorf("%s shows the forged line %d times", n.Name, c)
			}
		}
	})

	t.Run("idle connections", func(t *testing.T) {
		const idle = 100
		conns := make([]net.Conn, idle)
		for i := range conns {
			conns[i] = hostileDial(t, addr)
		}
		fence(t, "idle", alice, bob)
		// Each idle connection ends: refused over the per-address cap or
		// dropped at the end of the handshake time.
		for i, c := range conns {
			if err := hostileClosed(c, e2e.Patience); err != nil {
				t.Fatalf("idle connection %d: %v, want it closed by the node", i, err)
			}
		}
		// A newcomer gets in once the idle connections are gone.
		carol := startNode(t, "Carol", "--peer", addr)
		waitMesh(t, alice, bob, carol)
		fence(t, "newcomer", alice, bob, carol)
		carol.Quit()
	})

	alice.Quit()
	bob.Quit()
	for _, n := range []*e2e.Node{alice, bob} {
		checkVerifyClean(t, n.Name, n.DataDir)
		for _, l := range historyTexts(t, n.DataDir) {
			if strings.Contains(l, "forged") {
				t.Errorf("%s's history holds the forged line %q", n.Name, l)
			}
		}
	}
}

// networkKeyFile writes a network key of 32 random bytes, as hex, to a
// new file with mode perm.
func networkKeyFile(t *testing.T, perm os.FileMode) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "network.key")
	if err := os.WriteFile(f, []byte(hex.EncodeToString(key)+"\n"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, perm); err != nil { // whatever the umask made of it
		t.Fatal(err)
	}
	return f
}

func TestOnlyNodesWithTheSameNetworkKeyMeet(t *testing.T) {
	t.Parallel()
	key := networkKeyFile(t, 0o600)
	alice := startNode(t, "Alice", "--network-key-file", key)
	bob := startNode(t, "Bob", "--peer", alice.Addr(), "--network-key-file", key)
	waitMesh(t, alice, bob)

	oscar := startNode(t, "Oscar", "--peer", alice.Addr(), "--peer", bob.Addr(), "--network-key-file", networkKeyFile(t, 0o600))
	nina := startNode(t, "Nina", "--peer", alice.Addr(), "--peer", bob.Addr())
	// Each outsider has been turned away by both keyed nodes.
	for _, o := range []struct {
		n   *e2e.Node
		why string
	}{{oscar, "wrong network key"}, {nina, "peer requires a network key"}} {
		for _, keyed := range []*e2e.Node{alice, bob} {
			o.n.WaitStderr(keyed.ShortID + ": " + o.why)
		}
	}
	oscar.Send("oscar was here")
	oscar.WaitLine(chatLine("Oscar", "oscar was here"))
	nina.Send("nina was here")
	nina.WaitLine(chatLine("Nina", "nina was here"))

	fence(t, "keyed", alice, bob)
	for _, n := range []*e2e.Node{alice, bob} {
		users, _ := n.Users()
		if listsName(users, "Oscar") || listsName(users, "Nina") || len(users) != 1 {
			t.Errorf("%s lists %v, want only the other keyed node", n.Name, users)
		}
		for _, who := range []string{"Oscar", "Nina", "oscar was here", "nina was here"} {
			if c := n.CountLines(who); c != 0 {
				t.Errorf("%s shows %d lines with %q, want none", n.Name, c, who)
			}
		}
		for _, p := range jsonLines(t, "peers", "--data-dir", n.DataDir, "--json") {
			if name := fmt.Sprint(p["name"]); name == "Oscar" || name == "Nina" {
				t.Errorf("%s's peer table holds the outsider %s", n.Name, name)
			}
		}
	}
	for _, n := range []*e2e.Node{oscar, nina} {
		if users, _ := n.Users(); len(users) != 0 {
			t.Errorf("outsider %s lists %v, want no one", n.Name, users)
		}
	}
	for _, n := range []*e2e.Node{alice, bob, oscar, nina} {
		n.Quit()
	}

	t.Run("a key file others can read is refused", func(t *testing.T) {
		loose := networkKeyFile(t, 0o644)
		dir := newDataDir(t)
		res := p2pchat.Run(t, "--uname", "Lax", "--data-dir", dir, "--port", "0", "--network-key-file", loose)
		if res.Code != 1 || !strings.Contains(res.Stderr, loose) {
			t.Errorf("a node with a key file of mode 0644 exited %d with %q, want 1 and a message naming %s", res.Code, res.Stderr, loose)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused node touched its data directory: %v", err)
		}
	})
}

func TestASenderKilledMidPasteKeepsAndDeliversEveryLineItShowed(t *testing.T) {
	t.Parallel()
	const total, killAfter = 2000, 200
	alice, bob := startPair(t)

	texts := numberedLines("Alice", "paste", total)
	var pasted sync.WaitGroup
	pasted.Add(1)
	go func() {
		defer pasted.Done()
		_ = alice.Paste(texts) // broken by the kill, as it may well be
	}()
	alice.WaitCount("<Alice> alice-paste-", killAfter)
	alice.Kill()
	pasted.Wait()
	var shown []string
	for _, l := range alice.Lines() {
		if i := strings.Index(l, "<Alice> alice-paste-"); i >= 0 {
			shown = append(shown, l[i:])
		}
	}
	t.Logf("Alice showed %d of %d pasted lines before SIGKILL", len(shown), total)
	if !slices.Equal(shown, asChat("Alice", texts[:len(shown)])) {
		t.Fatalf("Alice showed her pasted lines out of order or with gaps")
	}

	alice = restart(t, alice.DataDir)
	checkVerifyClean(t, "Alice (running)", alice.DataDir)
	stored := historyTexts(t, alice.DataDir)
	kept := slices.DeleteFunc(slices.Clone(stored), func(l string) bool { return !strings.Contains(l, "alice-paste-") })
	if len(kept) < len(shown) || !slices.Equal(kept, asChat("Alice", texts[:len(kept)])) {
		t.Fatalf("Alice's history has %d pasted lines (want the %d she showed, then perhaps more, in order)", len(kept), len(shown))
	}
	t.Logf("Alice kept %d of the pasted lines", len(kept))

	// Bob ends up with exactly what Alice kept: whatever live relay
	// brought before the kill, and the rest through catch-up.
	var bobs []string
	e2e.WaitFor(t, e2e.Patience, func() bool {
		bobs = slices.DeleteFunc(historyTexts(t, bob.DataDir), func(l string) bool { return !strings.Contains(l, "alice-paste-") })
		return len(bobs) >= len(kept)
	}, fmt.Sprintf("Bob's history to hold the %d lines Alice kept", len(kept)))
	checkHistoryHasInOrder(t, "Bob", bobs, "alice-paste-", kept)
	checkShownAtMostOnce(t, bob, "alice-paste-")

	fence(t, "after-kill", alice, bob)
	alice.Quit()
	bob.Quit()
	checkVerifyClean(t, "Alice (stopped)", alice.DataDir)
	checkVerifyClean(t, "Bob", bob.DataDir)
	checkHistoryHasInOrder(t, "Bob (stopped)", historyTexts(t, bob.DataDir), "alice-paste-", kept)
}
