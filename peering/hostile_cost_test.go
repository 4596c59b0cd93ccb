package peering

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// The attacks here speak the protocol correctly with fresh ed25519 keys,
// which cost nothing, against an honest pair Alice (the victim) and Bob.
// After each, the pair still chats within 2 s, neither penalized the
// other, both logs verify (once the nodes stopped), and the heap of the whole test process (both nodes
// and the attacker) stays under costTestHeapBound after a GC.

// costTestHeapBound is the victim's memory bound: the heap in use by this
// process, two nodes and the attacker included, after a GC.
const costTestHeapBound = 64 << 20

// costTestPair starts Alice, tweaked, and Bob connected to her.
func costTestPair(t *testing.T, tweak func(*Config)) (alice, bob *netTestNode) {
	t.Helper()
	alice = netTestStart(t, "Alice", tweak)
	bob = netTestStart(t, "Bob", netTestSeeds(alice))
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return alice.connectedTo(bob) && bob.connectedTo(alice)
	})
	return alice, bob
}

// costTestStillHonest checks what must hold after every attack.
func costTestStillHonest(t *testing.T, a, b *netTestNode, tag string) {
	t.Helper()
	b.say(t, "after "+tag)
	netTestWaitFor(t, honestWithin, "Alice shows Bob's line", func() bool { return a.display.saw("after " + tag) })
	a.say(t, "reply "+tag)
	netTestWaitFor(t, honestWithin, "Bob shows Alice's line", func() bool { return b.display.saw("reply " + tag) })
	now := time.Now()
	if _, p := a.penalties.active(b.ID(), now); p {
		t.Error("Alice penalized Bob")
	}
	if _, p := b.penalties.active(a.ID(), now); p {
		t.Error("Bob penalized Alice")
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use after %s: %.1f MiB", tag, float64(ms.HeapInuse)/(1<<20))
	if ms.HeapInuse > costTestHeapBound {
		t.Errorf("heap in use %d MiB, bound %d MiB", ms.HeapInuse>>20, costTestHeapBound>>20)
	}
	// bbolt's page check is not safe beside a writer: stop first.
	for _, n := range []*netTestNode{a, b} {
		n.stop()
		rep, err := n.log.Verify(context.Background())
		if err != nil || len(rep.Problems) > 0 {
			t.Errorf("verify %s: %v %v", n.Name(), err, rep.Problems)
		}
	}
}

// costTestAttacker is a hand-driven peer whose incoming frames are read
// (and counted) in the background, so the victim never finds it slow.
type costTestAttacker struct {
	*netTestPeer
	done      chan struct{}
	maxChat   atomic.Int64 // largest CHAT frame received, in bytes
	chats     atomic.Int64
	pongs     atomic.Int64
	goodbyeMu sync.Mutex
	goodbye   string
}

// costTestJoin connects to victim as a fresh key, sends join and reads the
// victim's JOIN.
func costTestJoin(t *testing.T, victim *netTestNode, key ed25519.PrivateKey, join wire.JoinMsg) *costTestAttacker {
	t.Helper()
	p := netTestDialTLS(t, victim.Addr().String(), key)
	join.Version, join.ID = wire.ProtocolVersion, p.id
	if join.Name == "" {
		join.Name = "Mallory"
	}
	if join.Port == 0 {
		join.Port = 9
	}
	if err := p.write(wire.FrameJoin, join); err != nil {
		t.Fatal(err)
	}
	a := &costTestAttacker{netTestPeer: p, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			_ = p.tc.SetReadDeadline(time.Now().Add(time.Minute))
			typ, payload, err := p.fr.Next()
			if err != nil {
				return
			}
			switch typ {
			case wire.FrameChat:
				a.chats.Add(1)
				if n := int64(len(typ) + len(payload) + 2); n > a.maxChat.Load() {
					a.maxChat.Store(n)
				}
			case wire.FramePong:
				a.pongs.Add(1)
			case wire.FrameGoodbye:
				a.goodbyeMu.Lock()
				a.goodbye = string(payload)
				a.goodbyeMu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		p.tc.Close()
		<-a.done
	})
	return a
}

// closed waits for the victim to end the connection and returns the
// GOODBYE it sent, if any.
func (a *costTestAttacker) closed(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(timeout):
		t.Fatalf("the victim kept the attacker's connection for %s", timeout)
	}
	a.goodbyeMu.Lock()
	defer a.goodbyeMu.Unlock()
	return a.goodbye
}

// handled waits until the victim has handled every frame sent so far
// (its PONG to a PING comes after them) or has closed the connection.
func (a *costTestAttacker) handled(timeout time.Duration) error {
	want := a.pongs.Load() + 1
	if a.write(wire.FramePing, wire.PingMsg{Nonce: uint64(want)}) != nil {
		return nil
	}
	deadline := time.After(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for a.pongs.Load() < want {
		select {
		case <-a.done:
			return nil
		case <-deadline:
			return fmt.Errorf("the victim did not handle the frames within %s", timeout)
		case <-tick.C:
		}
	}
	return nil
}

// writeRaw sends a frame as given, bypassing the encoder.
func (a *costTestAttacker) writeRaw(frame string) error {
	_ = a.tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(a.tc, frame)
	return err
}

// costTestFakeIDs returns n node IDs nobody holds the key of: hearsay is
// never proven, so random bytes will do.
func costTestFakeIDs(t *testing.T, n int) []eventlog.NodeID {
	t.Helper()
	out := make([]eventlog.NodeID, n)
	for i := range out {
		if _, err := rand.Read(out[i][:]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// costTestCount counts the victim's events of each type.
func costTestCount(t *testing.T, n *netTestNode) map[eventlog.Type]int {
	t.Helper()
	out := map[eventlog.Type]int{}
	err := n.log.Scan(context.Background(), 1, func(e eventlog.Event) error {
		out[e.Body.Type()]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func costTestRows(t *testing.T, n *netTestNode) int {
	t.Helper()
	peers, err := n.log.Peers()
	if err != nil {
		t.Fatal(err)
	}
	return len(peers)
}

func TestPaddedLinesAreRefusedAndPaddingNeverTravels(t *testing.T) {
	a, b := costTestPair(t, nil)
	watcherKey, _ := netTestNewKey(t)
	watcher := costTestJoin(t, a, watcherKey, wire.JoinMsg{Name: "Walter"})

	// Five validly signed lines, each padded with an unsigned field of
	// 60 KB: the first ends the connection.
	key, _ := netTestNewKey(t)
	m := costTestJoin(t, a, key, wire.JoinMsg{})
	for i := range 5 {
		chat := netTestChat(key, uint64(i+1), fmt.Sprintf("padded %d", i))
		frame, err := wire.EncodeFrame(wire.FrameChat, chat, 0)
		if err != nil {
			t.Fatal(err)
		}
		padded := strings.TrimSuffix(string(frame), "}\n") + `,"pad":"` + strings.Repeat("x", 60000) + "\"}\n"
		if m.writeRaw(padded) != nil {
			break
		}
	}
	m.closed(t, 5*time.Second)
	if _, p := a.penalties.active(m.id, time.Now()); !p {
		t.Error("the padding peer is not penalized")
	}
	if a.display.chatsWithPrefix("padded ") > 0 || watcher.chats.Load() > 0 {
		t.Error("a padded line was shown or relayed")
	}

	// Whitespace and escapes are valid JSON and pass, but what goes on
	// is the canonical line: 250 bytes, not 60 KB.
	key2, _ := netTestNewKey(t)
	m2 := costTestJoin(t, a, key2, wire.JoinMsg{})
	for i := range 5 {
		chat := netTestChat(key2, uint64(i+1), fmt.Sprintf("spaced %d", i))
		frame, err := wire.EncodeFrame(wire.FrameChat, chat, 0)
		if err != nil {
			t.Fatal(err)
		}
		spaced := strings.Replace(string(frame), `{"origin"`, "{"+strings.Repeat(" ", 60000)+`"\u006frigin"`, 1)
		if err := m2.writeRaw(spaced); err != nil {
			t.Fatal(err)
		}
	}
	netTestWaitFor(t, 5*time.Second, "the watcher gets the five lines", func() bool { return watcher.chats.Load() >= 5 })
	netTestWaitFor(t, 5*time.Second, "Bob shows them", func() bool { return b.display.chatsWithPrefix("spaced ") == 5 })
	if got := watcher.maxChat.Load(); got > 1024 {
		t.Errorf("a relayed CHAT frame has %d bytes; the canonical line has about 250", got)
	}
	costTestStillHonest(t, a, b, "padding")
}

func TestAnInboundJoinMarkedFullIsAViolationAndItsPeersAreNeverRead(t *testing.T) {
	a, b := costTestPair(t, nil)
	before := costTestCount(t, a)
	rowsBefore := costTestRows(t, a)
	// 100 keys, each JOIN{"full":true} then 10 PEERS of 600 new IDs
	// (700 would not fit in a frame without addresses shorter than ours).
	fake := costTestFakeIDs(t, 600)
	entries := make([]wire.PeerEntry, len(fake))
	for i, id := range fake {
		entries[i] = wire.PeerEntry{ID: id, Name: "x", Addrs: []string{}}
	}
	peersFrame, err := wire.EncodeFrame(wire.FramePeers, wire.PeersMsg{Peers: entries}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 100 {
		key, _ := netTestNewKey(t)
		m := costTestJoin(t, a, key, wire.JoinMsg{Full: true})
		for range 10 {
			if m.writeRaw(string(peersFrame)) != nil {
				break
			}
		}
		if bye := m.closed(t, 5*time.Second); !strings.Contains(bye, errPenalized.Error()) {
			t.Fatalf("key %d was told %q, want penalized", k, bye)
		}
		if _, p := a.penalties.active(m.id, time.Now()); !p {
			t.Fatalf("key %d is not penalized", k)
		}
	}
	after := costTestCount(t, a)
	if got := after[eventlog.TypeJoin] - before[eventlog.TypeJoin]; got != 0 {
		t.Errorf("Alice appended %d JOIN events for inbound full JOINs", got)
	}
	if got := after[eventlog.TypePeers] - before[eventlog.TypePeers]; got != 0 {
		t.Errorf("Alice appended %d PEERS events from them", got)
	}
	if got := costTestRows(t, a); got != rowsBefore {
		t.Errorf("peer table went from %d to %d rows", rowsBefore, got)
	}
	costTestStillHonest(t, a, b, "full JOIN flood")
}

func TestAFloodOfFakePeerIDsDoesNotStopTheNodeFromDialingAGenuineNewPeer(t *testing.T) {
	const fakes = 10100
	a, b := costTestPair(t, func(cfg *Config) {
		cfg.Backoff = Backoff{Base: time.Second, Max: time.Minute, Jitter: 0.2}
	})
	before, start := costTestCount(t, a), time.Now()
	// Each attacking key may introduce NewPeerBurst new IDs: eleven keys
	// bring 10,100 fake nodes at closed ports of 127.0.0.1.
	ids := costTestFakeIDs(t, fakes)
	perKey := DefaultConfig().NewPeerBurst
	for first := 0; first < fakes; first += perKey {
		key, _ := netTestNewKey(t)
		m := costTestJoin(t, a, key, wire.JoinMsg{})
		chunk := ids[first:min(first+perKey, fakes)]
		for len(chunk) > 0 {
			n := min(len(chunk), 500)
			entries := make([]wire.PeerEntry, n)
			for i, id := range chunk[:n] {
				entries[i] = wire.PeerEntry{ID: id, Name: "fake", Addrs: []string{fmt.Sprintf("127.0.0.1:%d", 1+i%2)}}
			}
			if err := m.write(wire.FramePeers, wire.PeersMsg{Peers: entries}); err != nil {
				t.Fatal(err)
			}
			chunk = chunk[n:]
		}
		netTestWaitFor(t, 60*time.Second, "Alice to take the key's PEERS", func() bool {
			return costTestRows(t, a) >= min(first+perKey, DefaultConfig().MaxKnownPeers)
		})
	}
	if rows, limit := costTestRows(t, a), DefaultConfig().MaxKnownPeers+20; rows > limit {
		t.Errorf("the peer table has %d rows, bound %d", rows, limit)
	}

	// Carol is new: Bob tells Alice of her, and Alice must dial her.
	// Carol dials nobody but Bob herself.
	c := netTestStart(t, "Carol", func(cfg *Config) {
		netTestSeeds(b)(cfg)
		cfg.MaxOutbound = 1
	})
	netTestWaitFor(t, 20*time.Second, "Alice dials Carol", func() bool { return a.connectedTo(c) })
	// The bound is a rate: the burst, then MaxDialFailRecords a minute.
	perMinute := DefaultConfig().MaxDialFailRecords
	limit := perMinute + int(float64(perMinute)*time.Since(start).Minutes()) + 1
	if got := costTestCount(t, a)[eventlog.TypeDialFailed] - before[eventlog.TypeDialFailed]; got > limit {
		t.Errorf("Alice appended %d DIAL_FAILED events for fake peers, bound %d", got, limit)
	}
	costTestStillHonest(t, a, b, "fake peer flood")
}

// TestAFullTableOfFakePeersMakesRoomForAGenuineNewPeer: a peer names more
// fake nodes than the table may hold; a genuine newcomer Bob tells of
// later is still stored (a fake row is evicted for it, in the stored
// PEERS) and dialed, so that Alice could redial it after a restart.
func TestAFullTableOfFakePeersMakesRoomForAGenuineNewPeer(t *testing.T) {
	const maxKnown, fakes = 100, 300
	a, b := costTestPair(t, func(cfg *Config) {
		cfg.MaxKnownPeers = maxKnown
		cfg.Backoff = Backoff{Base: time.Second, Max: time.Minute, Jitter: 0.2}
	})
	key, _ := netTestNewKey(t)
	m := costTestJoin(t, a, key, wire.JoinMsg{})
	entries := make([]wire.PeerEntry, 0, fakes)
	for i, id := range costTestFakeIDs(t, fakes) {
		entries = append(entries, wire.PeerEntry{ID: id, Name: "fake", Addrs: []string{fmt.Sprintf("127.0.0.1:%d", 1+i%2)}})
	}
	for chunk := range slices.Chunk(entries, 100) {
		if err := m.write(wire.FramePeers, wire.PeersMsg{Peers: chunk}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.handled(time.Minute); err != nil {
		t.Fatal(err)
	}
	if rows := costTestRows(t, a); rows != maxKnown {
		t.Fatalf("after %d fake names the table has %d rows, want its bound of %d", fakes, rows, maxKnown)
	}

	c := netTestStart(t, "Carol", func(cfg *Config) {
		netTestSeeds(b)(cfg)
		cfg.MaxOutbound = 1
	})
	netTestWaitFor(t, 20*time.Second, "Alice dials Carol", func() bool { return a.connectedTo(c) })
	row, ok, err := a.log.Peer(c.ID())
	if err != nil || !ok || row.Hearsay() {
		t.Fatalf("Alice's row of Carol: %+v, %v, %v; want a row known first hand", row, ok, err)
	}
	var made *eventlog.Peers
	err = a.log.Scan(context.Background(), 1, func(e eventlog.Event) error {
		if p, ok := e.Body.(eventlog.Peers); ok && slices.ContainsFunc(p.Peers, func(i eventlog.PeerInfo) bool { return i.ID == c.ID() }) {
			made = &p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if made == nil || len(made.Evicted) == 0 {
		t.Errorf("no stored PEERS names Carol and evicts a row for her: %+v", made)
	}
	for _, known := range []eventlog.NodeID{b.ID(), m.id} {
		if _, ok, _ := a.log.Peer(known); !ok {
			t.Errorf("the row of %s, which connected, was evicted", known.Short())
		}
	}
	if rows := costTestRows(t, a); rows > maxKnown+1 {
		t.Errorf("the table has %d rows, bound %d", rows, maxKnown+1)
	}
	costTestStillHonest(t, a, b, "fake peers past the table's bound")
}

func TestFreshKeysThatDialInAreLetInOnlyAtTheNewIDRate(t *testing.T) {
	const burst = 20
	a, b := costTestPair(t, func(cfg *Config) {
		cfg.NewPeerBurst, cfg.NewPeerRate = burst, 1
		cfg.MaxPeers = 200
	})
	rowsBefore := costTestRows(t, a)
	busy := 0
	for range 3 * burst {
		key, _ := netTestNewKey(t)
		m := costTestJoin(t, a, key, wire.JoinMsg{})
		if err := m.write(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: "bye"}); err != nil {
			t.Fatal(err)
		}
		if bye := m.closed(t, 5*time.Second); strings.Contains(bye, "busy") {
			busy++
		}
	}
	if busy < burst {
		t.Errorf("only %d of %d fresh keys were refused as busy", busy, 3*burst)
	}
	// The burst, what the rate adds meanwhile, and Bob's and Alice's rows.
	if got := costTestRows(t, a) - rowsBefore; got > 2*burst {
		t.Errorf("%d fresh keys grew the table by %d rows", 3*burst, got)
	}
	costTestStillHonest(t, a, b, "fresh keys")
}

func TestAFloodOfFreshAuthorsIsPacedThenPenalized(t *testing.T) {
	a, b := costTestPair(t, func(cfg *Config) {
		cfg.NewAuthorBurst, cfg.NewAuthorRate = 100, 10
		cfg.FloodGrace = time.Second
	})
	key, _ := netTestNewKey(t)
	m := costTestJoin(t, a, key, wire.JoinMsg{})
	sent := 0
	for i := range 3000 {
		author, _ := netTestNewKey(t)
		if m.write(wire.FrameChat, netTestChat(author, 1, fmt.Sprintf("author %d", i))) != nil {
			break
		}
		sent++
	}
	if bye := m.closed(t, 10*time.Second); !strings.Contains(bye, errPenalized.Error()) {
		t.Errorf("the attacker was told %q, want penalized", bye)
	}
	netTestWaitFor(t, 5*time.Second, "a log line that names the new-author flood", func() bool {
		return a.logs.has("penalized peer", "new-author flood")
	})
	// The burst, the rate over the grace, and a batch in flight.
	if got, limit := a.display.chatsWithPrefix("author "), 100+10*2+maxIngestBatch; got > limit {
		t.Errorf("Alice stored %d lines of fresh authors out of %d sent, bound %d", got, sent, limit)
	}
	costTestStillHonest(t, a, b, "fresh authors")
}

func TestAReplacedConnectionsDisconnectIsNeverWrittenAfterItsSuccessorsConnect(t *testing.T) {
	a, b := costTestPair(t, nil)
	key, id := netTestNewKey(t)
	connected := func() bool {
		return slices.ContainsFunc(a.Users(), func(u User) bool { return u.ID == id })
	}
	// lastWord is the log's last CONNECT or DISCONNECT of the peer, and
	// how many of its connections were replaced.
	lastWord := func() (last string, replaced int) {
		err := a.log.Scan(context.Background(), 1, func(e eventlog.Event) error {
			switch body := e.Body.(type) {
			case eventlog.Connect:
				if body.ID == id {
					last = "CONNECT"
				}
			case eventlog.Disconnect:
				if body.ID == id {
					last = "DISCONNECT"
					if body.Reason == errDuplicate.Error() {
						replaced++
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return last, replaced
	}
	// The same key dials again and again, each time once the previous
	// connection is served: whichever of two connections has the lower
	// tie value stays, so a new one replaces the one up when its tie is
	// the lowest yet. In a round of 20 dials none does when the first had
	// the lowest tie of all, one time in 20; then the round's connections
	// are hung up and the next round starts afresh.
	for round := 0; ; round++ {
		if round == 10 {
			t.Fatal("no connection was replaced in 10 rounds of 20 dials")
		}
		var dials []*costTestAttacker
		for range 20 {
			at := costTestJoin(t, a, key, wire.JoinMsg{})
			if err := at.handled(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			dials = append(dials, at)
		}
		netTestWaitFor(t, 5*time.Second, "the last connection settles", connected)
		// Once the dust settles, the log's last word on the peer must be
		// the CONNECT of the connection that is up.
		netTestWaitFor(t, 5*time.Second, "the log to say the peer is connected", func() bool {
			p, ok, err := a.log.Peer(id)
			return err == nil && ok && !p.LastConnect.Before(p.LastDisconnect)
		})
		last, replaced := lastWord()
		if last != "CONNECT" && connected() {
			t.Fatalf("the peer is connected but the log's last word on it is %s", last)
		}
		if replaced > 0 {
			break
		}
		for _, at := range dials {
			at.tc.Close()
		}
		netTestWaitFor(t, 5*time.Second, "the round's connections to end", func() bool { return !connected() })
	}
	costTestStillHonest(t, a, b, "replacements")
}

func TestPeersListsPayForTheirEntriesFromTheGossipBudget(t *testing.T) {
	a, b := costTestPair(t, func(cfg *Config) {
		cfg.GossipRate, cfg.GossipBurst = 100, 2000
		cfg.FloodGrace = 500 * time.Millisecond
	})
	entries := make([]wire.PeerEntry, 600)
	for i, id := range costTestFakeIDs(t, len(entries)) {
		entries[i] = wire.PeerEntry{ID: id, Name: "x", Addrs: []string{}}
	}
	key, _ := netTestNewKey(t)
	m := costTestJoin(t, a, key, wire.JoinMsg{})
	for range 10 {
		if m.write(wire.FramePeers, wire.PeersMsg{Peers: entries}) != nil {
			break
		}
	}
	if bye := m.closed(t, 10*time.Second); !strings.Contains(bye, errPenalized.Error()) {
		t.Errorf("the gossiping peer was told %q, want penalized", bye)
	}
	netTestWaitFor(t, 5*time.Second, "a log line that names the gossip flood", func() bool {
		return a.logs.has("penalized peer", "gossip flood")
	})
	costTestStillHonest(t, a, b, "gossip flood")
}

// costTestConn is a connection with no socket, for the queue bounds.
func costTestConn(cfg Config) *conn {
	cfg.fill()
	c := &conn{n: &Node{cfg: cfg, logger: cfg.Logger}, closing: make(chan struct{}), sendq: make(chan []byte, cfg.SendQueue)}
	c.budget.setup(&cfg)
	return c
}

func TestASendQueueFullInBytesDropsThePeer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFrame, cfg.SendQueueBytes, cfg.SendQueue = 100, 1000, 4096
	c := costTestConn(cfg)
	frame := make([]byte, 150)
	sent := 0
	for range 100 {
		c.send(frame)
		select {
		case <-c.closing:
		default:
			sent++
			continue
		}
		break
	}
	if !errors.Is(c.closeErr, errSlow) {
		t.Fatalf("the connection ended with %v, want %v", c.closeErr, errSlow)
	}
	if sent != 1000/150 || c.queued.Load() > 1000 {
		t.Errorf("queued %d frames, %d bytes, before the drop; bound 1000 bytes", sent, c.queued.Load())
	}
}

func TestShutdownDoesNotWaitForAFullPeerThatNeverSendsItsPeers(t *testing.T) {
	// A listener that answers every JOIN as a full node would, then says
	// nothing more: the dialer's referral waits for a PEERS that never
	// comes.
	key, id := netTestNewKey(t)
	cert, err := NewCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan struct{}, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fr := wire.NewFrameReader(c, 0)
		if typ, _, err := fr.Next(); err != nil || typ != wire.FrameJoin {
			return
		}
		frame, err := wire.EncodeFrame(wire.FrameJoin, wire.JoinMsg{Version: wire.ProtocolVersion, ID: id, Name: "Fuller", Port: 9, Full: true}, 0)
		if err != nil {
			return
		}
		if _, err := c.Write(frame); err != nil {
			return
		}
		joined <- struct{}{}
		_, _, _ = fr.Next() // until the dialer hangs up
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
	})

	a := netTestStart(t, "Alice", func(cfg *Config) {
		cfg.Seeds = []string{ln.Addr().String()}
		cfg.HandshakeTimeout = time.Minute
	})
	select {
	case <-joined:
	case <-time.After(10 * time.Second):
		t.Fatal("Alice never dialed the full peer")
	}
	stopped := make(chan struct{})
	go func() {
		a.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Alice's shutdown waited for the full peer's PEERS (the handshake timeout is a minute)")
	}
}

func TestPeersFloodsFromManyKeysKeepTheTableBoundedAndThePairChatting(t *testing.T) {
	// Every key dials from 127.0.0.1: the per-address cap on concurrent
	// connections is not what this test is about.
	a, b := costTestPair(t, func(cfg *Config) { cfg.MaxConnsPerIP = 1000 })
	// 100 keys, each JOIN then 10 PEERS of 600 new IDs: 600,000 names,
	// more than the table may hold and more than any key may introduce.
	const keys, frames, perFrame = 100, 10, 600
	rowsBefore := costTestRows(t, a)
	attackers := make([]*costTestAttacker, keys)
	frameSets := make([][]wire.PeersMsg, keys)
	for k := range attackers {
		key, _ := netTestNewKey(t)
		attackers[k] = costTestJoin(t, a, key, wire.JoinMsg{})
		for range frames {
			entries := make([]wire.PeerEntry, perFrame)
			for i, id := range costTestFakeIDs(t, perFrame) {
				entries[i] = wire.PeerEntry{ID: id, Name: "x", Addrs: []string{}}
			}
			frameSets[k] = append(frameSets[k], wire.PeersMsg{Peers: entries})
		}
	}
	// All at once, as many keys would: each connection waits for its own
	// budget, not for the others'.
	errs := make(chan error, keys)
	for k, m := range attackers {
		go func() {
			for _, msg := range frameSets[k] {
				if m.write(wire.FramePeers, msg) != nil {
					break // refused as full: the node has only 32 places
				}
			}
			errs <- m.handled(time.Minute)
		}()
	}
	for range keys {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// What each key may add: NewPeerBurst, and the table's cap above all.
	limit := min(rowsBefore+keys*(DefaultConfig().NewPeerBurst+1), DefaultConfig().MaxKnownPeers+keys+2)
	rows := costTestRows(t, a)
	t.Logf("peer table: %d rows before, %d after, bound %d; %d PEERS events", rowsBefore, rows, limit, costTestCount(t, a)[eventlog.TypePeers])
	if rows > limit {
		t.Errorf("the peer table has %d rows, bound %d", rows, limit)
	}
	costTestStillHonest(t, a, b, "PEERS flood")
}
