package peering

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// Attacks on the memory of a node's queues by a stranger that takes every
// slot Alice has left (MaxPeers less Bob) with fresh keys, each within
// its own connection's bounds, against the honest pair Alice–Bob. The
// heap is measured after a GC while the attack holds, every
// memTestSample, and its peak must stay under hostileSyncHeapBound for
// the whole test process (both nodes, the attacker and its fixtures).

// memTestSample is how often the heap is measured during an attack.
const memTestSample = 250 * time.Millisecond

// memTestBigText is as long as a line's text may be, so that a queue's
// bytes hold as few lines as they can.
var memTestBigText = strings.Repeat("m", eventlog.MaxTextLen-96)

// memTestHeap is the live heap of the test process after a GC.
func memTestHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memTestPeak measures the heap every memTestSample for d and returns
// its peak, less the bytes of the frames the attacker built beforehand,
// which are not the node's.
func memTestPeak(d time.Duration, fixtures ...[][]byte) uint64 {
	var peak uint64
	tick := time.NewTicker(memTestSample)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		peak = max(peak, memTestHeap())
	}
	for _, frames := range fixtures {
		for _, f := range frames {
			peak -= uint64(len(f))
		}
	}
	return peak
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// memTestSlots is how many connections a stranger can hold at Alice with
// Bob connected.
func memTestSlots() int { return DefaultConfig().MaxPeers - 1 }

// memTestAttacker is one of the stranger's connections: it joins as
// version, reads what Alice sends at most trickle bytes every
// memTestSample (all of it if trickle is 0), and writes what it is given
// from a goroutine of its own, which blocks while Alice does not read.
type memTestAttacker struct {
	*netTestPeer
	read, written sync.WaitGroup
	mu            sync.Mutex
	sent          int // frames written
}

// memTestDial opens a TLS connection as key with a small receive buffer,
// so that what Alice sends waits in her memory rather than in the
// kernel's.
func memTestDial(t *testing.T, addr string, key ed25519.PrivateKey) *netTestPeer {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.(*net.TCPConn).SetReadBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	cert, err := NewCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, ClientConfig(cert))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		t.Fatal(err)
	}
	id, err := eventlog.IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return &netTestPeer{key: key, id: id, tc: tc, fr: wire.NewFrameReader(tc, 0)}
}

func memTestJoin(t *testing.T, victim *netTestNode, trickle int) *memTestAttacker {
	t.Helper()
	key, _ := netTestNewKey(t)
	p := memTestDial(t, victim.Addr().String(), key)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := p.next(5 * time.Second); err != nil || typ != wire.FrameJoin {
		t.Fatalf("Alice's JOIN: %s %v", typ, err)
	}
	at := &memTestAttacker{netTestPeer: p}
	at.read.Add(1)
	go func() {
		defer at.read.Done()
		buf := make([]byte, max(trickle, 32<<10))
		var tick *time.Ticker
		if trickle > 0 {
			buf = buf[:trickle]
			tick = time.NewTicker(memTestSample)
			defer tick.Stop()
		}
		for {
			_ = p.tc.SetReadDeadline(time.Now().Add(time.Minute))
			if _, err := p.tc.Read(buf); err != nil {
				return
			}
			if tick != nil {
				<-tick.C
			}
		}
	}()
	t.Cleanup(at.close)
	return at
}

// send writes frames in the background, as fast as Alice reads them.
func (at *memTestAttacker) send(frames [][]byte) {
	at.written.Add(1)
	go func() {
		defer at.written.Done()
		for _, f := range frames {
			_ = at.tc.SetWriteDeadline(time.Now().Add(3 * time.Minute))
			if _, err := at.tc.Write(f); err != nil {
				return
			}
			at.mu.Lock()
			at.sent++
			at.mu.Unlock()
		}
	}()
}

func (at *memTestAttacker) frames() int {
	at.mu.Lock()
	defer at.mu.Unlock()
	return at.sent
}

func (at *memTestAttacker) close() {
	at.tc.NetConn().Close()
	at.read.Wait()
	at.written.Wait()
}

func memTestFrame(t *testing.T, typ string, v any) []byte {
	t.Helper()
	f, err := wire.EncodeFrame(typ, v, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// memTestFresh is n lines, each of a fresh author, whose texts start
// with prefix.
func memTestFresh(t *testing.T, prefix string, n int) [][]byte {
	t.Helper()
	frames := make([][]byte, n)
	for i := range frames {
		key, _ := netTestNewKey(t)
		frames[i] = memTestFrame(t, wire.FrameChat, netTestChat(key, 1, fmt.Sprintf("%s %d", prefix, i)))
	}
	return frames
}

// memTestBigLines is n lines of one fresh author, each as long as a line
// may be.
func memTestBigLines(t *testing.T, n int) [][]byte {
	t.Helper()
	key, _ := netTestNewKey(t)
	out := make([][]byte, n)
	for i := range out {
		out[i] = memTestFrame(t, wire.FrameChat, netTestChat(key, uint64(i+1), memTestBigText))
	}
	return out
}

// memTestHistory appends to both logs n chained lines of a fresh author,
// each as long as a line may be: what an answer to "send me everything"
// sends as LINES frames of 64 KiB.
func memTestHistory(t *testing.T, n int, nodes ...*netTestNode) {
	t.Helper()
	key, _ := netTestNewKey(t)
	bodies := make([]eventlog.Body, 0, n)
	var prev []byte
	for i := range n {
		c := eventlog.Chat{OriginSeq: uint64(i + 1), OriginTime: time.Unix(1_700_000_000, int64(i)), Name: "Carol", Text: memTestBigText, Prev: prev}
		c.Sign(key)
		bodies = append(bodies, c)
		prev = eventlog.ChainHash(c)
	}
	for _, node := range nodes {
		for from := 0; from < n; from += 512 {
			if _, err := node.log.Append(context.Background(), bodies[from:min(from+512, n)]...); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// memTestPair starts Alice and Bob, connected. Alice's new-author budget
// is small, so that the fixture is quick to sign, but makes a connection
// wait as long as the default one does (burst/rate, 25 s against the
// default grace of 30 s). Bob takes what Alice relays of the attackers'
// fresh authors without waiting: a relay of many strangers' floods makes
// Bob penalize Alice for a new-author flood, which is not what these
// tests measure.
func memTestPair(t *testing.T) (a, b *netTestNode) {
	t.Helper()
	a = netTestStart(t, "Alice", func(cfg *Config) {
		cfg.NewAuthorBurst, cfg.NewAuthorRate = 50, 2
	})
	b = netTestStart(t, "Bob", func(cfg *Config) {
		netTestSeeds(a)(cfg)
		cfg.NewAuthorBurst = 1 << 20
	})
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool { return a.connectedTo(b) && b.connectedTo(a) })
	return a, b
}

// memTestHeld is how many fresh authors past the burst each connection
// sends: their wait, at most burst/rate, stays within the flood grace.
const memTestHeld = 50

// TestIngestQueuesOfManyConnectionsShareOneRoom: on every slot Alice
// has left, a fresh key spends its connection's new-author burst, then
// sends more fresh authors, which make its ingest loop wait for the
// budget as long as the flood grace allows, and behind them long lines,
// which wait in its queue meanwhile. Nothing is a violation; together the
// queues would hold 4 MiB each.
func TestIngestQueuesOfManyConnectionsShareOneRoom(t *testing.T) {
	a, b := memTestPair(t)
	base := memTestHeap()
	big := memTestBigLines(t, a.cfg.IngestQueueBytes/len(memTestBigText)+64)
	attackers := make([]*memTestAttacker, memTestSlots())
	for i := range attackers {
		attackers[i] = memTestJoin(t, a, 0)
		attackers[i].send(memTestFresh(t, fmt.Sprintf("burst %d", i), a.cfg.NewAuthorBurst))
	}
	netTestWaitFor(t, time.Minute, "Alice to store every connection's burst of fresh authors", func() bool {
		return a.display.chatsWithPrefix("burst ") == len(attackers)*a.cfg.NewAuthorBurst
	})
	for i, at := range attackers {
		at.send(append(memTestFresh(t, fmt.Sprintf("held %d", i), memTestHeld), big...))
	}
	netTestWaitFor(t, time.Minute, "every connection to send its held fresh authors", func() bool {
		for _, at := range attackers {
			if at.frames() < a.cfg.NewAuthorBurst+memTestHeld {
				return false
			}
		}
		return true
	})
	peak := memTestPeak(8*time.Second, big)
	t.Logf("%d connections, each %d fresh authors past the burst and %d lines of %d bytes: heap %.1f MiB before, peak %.1f MiB during less the attacker's frames (bound %d MiB)",
		len(attackers), memTestHeld, len(big), len(memTestBigText), mib(base), mib(peak), costTestHeapBound>>20)
	memTestWithinBound(t, peak)
	if got := a.display.chatsWithPrefix("held "); got == len(attackers)*memTestHeld {
		t.Errorf("Alice stored every held fresh author during the attack: no connection waited")
	}
	memTestLeave(t, a, b, attackers, "slow ingest on every connection")
}

func TestCatchupAnswersToManyConnectionsThatReadSlowlyShareOneRoom(t *testing.T) {
	a, b := memTestPair(t)
	memTestHistory(t, 6000, a, b)
	base := memTestHeap()
	attackers := make([]*memTestAttacker, memTestSlots())
	for i := range attackers {
		attackers[i] = memTestJoin(t, a, 16<<10)
		attackers[i].send([][]byte{memTestFrame(t, wire.FrameSync, wire.SyncMsg{Origins: []wire.SyncOrigin{}, Round: 1})})
	}
	memTestAnswering(t, a, attackers)
	peak := memTestPeak(8 * time.Second)
	t.Logf("%d connections asking for %d lines of %d bytes, reading %d bytes every %s: heap %.1f MiB before, peak %.1f MiB during less the attacker's frames (bound %d MiB)",
		len(attackers), 6000, len(memTestBigText), 16<<10, memTestSample, mib(base), mib(peak), costTestHeapBound>>20)
	memTestWithinBound(t, peak)
	memTestLeave(t, a, b, attackers, "slow readers of catch-up on every connection")
}

// memTestAnswering waits until victim's answer to every attacker has
// begun to go out, so that what is measured is what the attack holds,
// not the moment 31 answers start at once.
func memTestAnswering(t *testing.T, victim *netTestNode, attackers []*memTestAttacker) {
	t.Helper()
	netTestWaitFor(t, 30*time.Second, "an answer under way to every attacker", func() bool {
		victim.mu.Lock()
		defer victim.mu.Unlock()
		for _, at := range attackers {
			c := victim.conns[at.id]
			if c == nil || c.cu.answerBytes.Load() == 0 {
				return false
			}
		}
		return true
	})
}

// memTestWithinBound fails t if peak, the heap during an attack, is past
// the node's bound.
func memTestWithinBound(t *testing.T, peak uint64) {
	t.Helper()
	if peak > costTestHeapBound {
		t.Errorf("heap %.1f MiB after GC during the attack, above %d MiB", mib(peak), costTestHeapBound>>20)
	}
}

// memTestLeave has the attackers leave, then checks that a's rooms are
// whole again and that a and b still chat.
func memTestLeave(t *testing.T, a, b *netTestNode, attackers []*memTestAttacker, what string) {
	t.Helper()
	for _, at := range attackers {
		at.close()
	}
	memTestRoomsWhole(t, a)
	hostileSyncAfter(t, a, b, what)
}

// memTestRoomsWhole waits for the node's rooms to be whole again once
// the attackers are gone.
func memTestRoomsWhole(t *testing.T, n *netTestNode) {
	t.Helper()
	for _, room := range []struct {
		name string
		sem  interface {
			TryAcquire(int64) bool
			Release(int64)
		}
		size int64
	}{
		{"received lines", n.ingestRoom, ingestRoomBytes},
		{"catch-up frames", n.catchRoom, catchRoomBytes},
		{"SYNC requests", n.syncRoom, syncRequestsRoom},
	} {
		// A read loop waiting for room notices the end of its
		// connection only once its ingest loop, which may be waiting for
		// the new-author budget, lets it read again.
		netTestWaitFor(t, time.Minute, "the room for "+room.name+" whole again", func() bool {
			if !room.sem.TryAcquire(room.size) {
				return false
			}
			room.sem.Release(room.size)
			return true
		})
	}
}

// TestQueuesAndRequestsOfManyConnectionsTogetherStayUnderTheBound: on
// every slot Alice has left, a fresh key does all of the above at once:
// asks for everything and reads the answer slowly, holds a SYNC request
// that never ends, and fills its ingest queue behind fresh authors that
// wait for the new-author budget.
func TestQueuesAndRequestsOfManyConnectionsTogetherStayUnderTheBound(t *testing.T) {
	if raceDetector {
		t.Skip("under -race Alice drops every attacker for a write timeout before the attack holds: its reads stall while its writes wait")
	}
	a, b := memTestPair(t)
	memTestHistory(t, 6000, a, b)
	base := memTestHeap()
	var request [][]byte
	for _, msg := range hostileSyncBigRequest(t, maxSyncRequestBytes-2*wire.DefaultMaxFrame) {
		request = append(request, memTestFrame(t, wire.FrameSync, msg))
	}
	big := memTestBigLines(t, a.cfg.IngestQueueBytes/len(memTestBigText)+64)
	attackers := make([]*memTestAttacker, memTestSlots())
	for i := range attackers {
		attackers[i] = memTestJoin(t, a, 16<<10)
		frames := [][]byte{memTestFrame(t, wire.FrameSync, wire.SyncMsg{Origins: []wire.SyncOrigin{}, Round: 1})}
		frames = append(frames, request...)
		attackers[i].send(append(frames, memTestFresh(t, fmt.Sprintf("burst %d", i), a.cfg.NewAuthorBurst)...))
	}
	netTestWaitFor(t, time.Minute, "Alice to store every connection's burst of fresh authors", func() bool {
		return a.display.chatsWithPrefix("burst ") == len(attackers)*a.cfg.NewAuthorBurst
	})
	for i, at := range attackers {
		at.send(append(memTestFresh(t, fmt.Sprintf("held %d", i), memTestHeld), big...))
	}
	sent := 1 + len(request) + a.cfg.NewAuthorBurst + memTestHeld
	netTestWaitFor(t, time.Minute, "every connection to send its held fresh authors", func() bool {
		for _, at := range attackers {
			if at.frames() < sent {
				return false
			}
		}
		return true
	})
	memTestAnswering(t, a, attackers)
	peak := memTestPeak(8*time.Second, big, request)
	t.Logf("%d connections, each asking for %d lines of %d bytes and reading 16 KiB every %s, a SYNC request of %d frames never ended, %d fresh authors past the burst and %d lines of %d bytes: heap %.1f MiB before, peak %.1f MiB during less the attacker's frames (bound %d MiB)",
		len(attackers), 6000, len(memTestBigText), memTestSample, len(request), memTestHeld, len(big), len(memTestBigText), mib(base), mib(peak), costTestHeapBound>>20)
	memTestWithinBound(t, peak)
	memTestLeave(t, a, b, attackers, "every queue filled on every connection")
}
