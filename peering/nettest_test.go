package peering

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/store"
	"github.com/rs/zerolog"
)

// netTestNode is a real node on loopback with its event log in a bbolt
// file of its own, what it shows and what it logs kept for the test.
type netTestNode struct {
	*Node
	st      *store.Store
	log     *eventlog.Log
	display *netTestDisplay
	logs    *netTestLogs
	// stop ends the node and waits for it; its log stays open until the
	// test ends, for checks of what it holds.
	stop func()
}

// netTestStart starts a node named name, listening on 127.0.0.1, with
// short redial delays; tweak adjusts its configuration. The node stops,
// and its log and store close, when the test ends.
func netTestStart(t *testing.T, name string, tweak func(*Config)) *netTestNode {
	t.Helper()
	return netTestStartIn(t, t.TempDir(), name, tweak)
}

// netTestStartIn is netTestStart with the data directory dir.
func netTestStartIn(t *testing.T, dir, name string, tweak func(*Config)) *netTestNode {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.Identity()
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	tn := &netTestNode{st: st, display: &netTestDisplay{}, logs: &netTestLogs{}}
	cfg := DefaultConfig()
	cfg.Name, cfg.Key, cfg.ListenHost = name, key, "127.0.0.1"
	cfg.Backoff = Backoff{Base: 50 * time.Millisecond, Max: 500 * time.Millisecond, Jitter: 0.2}
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.Logger = zerolog.New(tn.logs).With().Str("node", name).Logger()
	if tweak != nil {
		tweak(&cfg)
	}
	// The table's bound is the node's, as p2pchat run opens it.
	lg, err := eventlog.Open(st, eventlog.Options{MaxPeers: cfg.MaxKnownPeers})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	tn.log = lg
	tn.Node, err = New(cfg, lg, tn.display)
	if err == nil {
		err = tn.Listen()
	}
	if err != nil {
		lg.Close()
		st.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tn.Run(ctx) }()
	tn.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: run: %v", name, err)
		}
	})
	t.Cleanup(func() {
		tn.stop()
		lg.Close()
		st.Close()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, tn.logs)
		}
	})
	return tn
}

// netTestSeeds makes a tweak that has the node dial the given nodes at start.
func netTestSeeds(others ...*netTestNode) func(*Config) {
	return func(cfg *Config) {
		for _, o := range others {
			cfg.Seeds = append(cfg.Seeds, o.Addr().String())
		}
	}
}

// connectedTo reports whether tn has a connection to other.
func (tn *netTestNode) connectedTo(other *netTestNode) bool {
	return slices.ContainsFunc(tn.Users(), func(u User) bool { return u.ID == other.ID() })
}

// knows reports whether other is in tn's peer table.
func (tn *netTestNode) knows(t *testing.T, other eventlog.NodeID) bool {
	t.Helper()
	peers, err := tn.log.Peers()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(peers, func(p eventlog.Peer) bool { return p.ID == other })
}

// say sends a line from tn and fails the test if the node refuses it.
func (tn *netTestNode) say(t *testing.T, text string) {
	t.Helper()
	if err := tn.Say(context.Background(), text); err != nil {
		t.Fatalf("%s says %q: %v", tn.Name(), text, err)
	}
}

// netTestWaitFor polls cond until it holds, failing the test after timeout.
func netTestWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s still waiting for: %s", timeout, what)
		}
		<-tick.C
	}
}

// netTestDisplay records what a node shows.
type netTestDisplay struct {
	mu      sync.Mutex
	chats   []string // "<name> text"
	private []string
	system  []string
}

func (d *netTestDisplay) ShowChat(_ time.Time, name, text string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.chats = append(d.chats, "<"+name+"> "+text)
}

func (d *netTestDisplay) ShowPrivateTo(t time.Time, to, name, text string) {
	d.ShowPrivate(t, name, text)
}

func (d *netTestDisplay) ShowPrivate(_ time.Time, name, text string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.private = append(d.private, "<"+name+"> "+text)
}

func (d *netTestDisplay) ShowSystem(text string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.system = append(d.system, text)
}

// saw reports whether a chat line with exactly this text was shown.
func (d *netTestDisplay) saw(text string) bool {
	return d.count(text) > 0
}

// count is how many chat lines with exactly this text were shown.
func (d *netTestDisplay) count(text string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, line := range d.chats {
		if _, got, ok := strings.Cut(line, "> "); ok && got == text {
			n++
		}
	}
	return n
}

// chatsWithPrefix is how many chat lines starting with prefix were shown.
func (d *netTestDisplay) chatsWithPrefix(prefix string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, line := range d.chats {
		if _, got, ok := strings.Cut(line, "> "); ok && strings.HasPrefix(got, prefix) {
			n++
		}
	}
	return n
}

// netTestLogs keeps a node's JSON log lines.
type netTestLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *netTestLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *netTestLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the log lines whose message is msg, decoded.
func (l *netTestLogs) lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// has reports whether a line with message msg has an error containing
// errPart.
func (l *netTestLogs) has(msg, errPart string) bool {
	return slices.ContainsFunc(l.lines(msg), func(m map[string]any) bool {
		e, _ := m["error"].(string)
		return strings.Contains(e, errPart)
	})
}

// netTestPeer is a hand-driven peer: real TLS with its own key, frames
// written and read by the test, for behaviour no honest node shows.
type netTestPeer struct {
	key ed25519.PrivateKey
	id  eventlog.NodeID
	tc  *tls.Conn
	fr  *wire.FrameReader
}

// netTestNewKey returns a fresh identity.
func netTestNewKey(t *testing.T) (ed25519.PrivateKey, eventlog.NodeID) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := eventlog.IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return key, id
}

// netTestDialTLS opens a TLS connection to addr as the node key, with
// nothing sent yet. The connection closes when the test ends.
func netTestDialTLS(t *testing.T, addr string, key ed25519.PrivateKey) *netTestPeer {
	t.Helper()
	cert, err := NewCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: ClientConfig(cert)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	id, err := eventlog.IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*tls.Conn)
	return &netTestPeer{key: key, id: id, tc: tc, fr: wire.NewFrameReader(tc, 0)}
}

// write sends one frame, within a deadline.
func (p *netTestPeer) write(typ string, v any) error {
	frame, err := wire.EncodeFrame(typ, v, 0)
	if err != nil {
		return err
	}
	_ = p.tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = p.tc.Write(frame)
	return err
}

// join sends a JOIN as name, as an honest node would.
func (p *netTestPeer) join(name string) error {
	return p.write(wire.FrameJoin, wire.JoinMsg{Version: wire.ProtocolVersion, ID: p.id, Name: name, Port: 9})
}

// next reads the next frame within timeout.
func (p *netTestPeer) next(timeout time.Duration) (string, []byte, error) {
	_ = p.tc.SetReadDeadline(time.Now().Add(timeout))
	return p.fr.Next()
}

// goodbye reads frames until a GOODBYE and returns its reason, or fails
// the test if the connection ends without one.
func (p *netTestPeer) goodbye(t *testing.T, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		typ, payload, err := p.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("connection ended without GOODBYE: %v", err)
		}
		if typ == wire.FrameGoodbye {
			var bye wire.GoodbyeMsg
			if err := json.Unmarshal(payload, &bye); err != nil {
				t.Fatal(err)
			}
			return bye.Reason
		}
	}
}

// netTestChat returns a CHAT payload signed by key.
func netTestChat(key ed25519.PrivateKey, seq uint64, text string) wire.ChatMsg {
	c := eventlog.Chat{OriginSeq: seq, OriginTime: time.Now(), Name: "Mallory", Text: text}
	c.Sign(key)
	return wire.ChatFromEvent(c)
}

// netTestChainedChat is a line signed by key that chains to prev, its
// line before (eventlog.ChainHash).
func netTestChainedChat(key ed25519.PrivateKey, seq uint64, text string, prev wire.ChatMsg) wire.ChatMsg {
	c := eventlog.Chat{OriginSeq: seq, OriginTime: time.Now(), Name: "Mallory", Text: text, Prev: eventlog.ChainHash(prev.Event())}
	c.Sign(key)
	return wire.ChatFromEvent(c)
}

// netTestLines returns n distinct lines for pasting.
func netTestLines(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %05d: the quick brown fox jumps over the lazy dog", prefix, i)
	}
	return out
}
