package peering

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
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

// Attacks on catch-up by a peer that speaks the protocol correctly with
// fresh keys, against an honest pair Alice–Bob. After each, Alice and Bob
// still chat within 2 s, their logs verify, neither penalized the other,
// and the heap after a GC stays under hostileSyncHeapBound.

// hostileSyncHeapBound is the live heap the whole test process (two honest
// nodes, the attacker and the fixtures) may hold after an attack. What
// catch-up itself may hold per connection is bounded far below it: the
// caught-up view at 1 MiB (maxCaughtUpBytes), a peer's SYNC request at
// 1 MiB of frames (maxSyncRequestBytes) or 20,000 origins from a version 1
// peer, and this node's own request as much again.
const hostileSyncHeapBound = 32 << 20

// hostileSyncPair starts Alice and Bob, connected, with a short sync
// interval and answer deadline so that the attacks play out in seconds;
// alice, if not nil, changes Alice's configuration further.
func hostileSyncPair(t *testing.T, alice func(*Config)) (a, b *netTestNode) {
	t.Helper()
	tweak := func(cfg *Config) {
		cfg.SyncInterval = 500 * time.Millisecond
		cfg.SyncTimeout = 3 * time.Second
	}
	a = netTestStart(t, "Alice", func(cfg *Config) {
		tweak(cfg)
		if alice != nil {
			alice(cfg)
		}
	})
	b = netTestStart(t, "Bob", func(cfg *Config) { tweak(cfg); netTestSeeds(a)(cfg) })
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool { return a.connectedTo(b) && b.connectedTo(a) })
	return a, b
}

// hostileSyncAfter checks what must hold after every attack.
func hostileSyncAfter(t *testing.T, a, b *netTestNode, what string) {
	t.Helper()
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected after "+what, func() bool { return a.connectedTo(b) && b.connectedTo(a) })
	for i, pair := range [][2]*netTestNode{{a, b}, {b, a}} {
		line := fmt.Sprintf("still here after %s (%d)", what, i)
		pair[0].say(t, line)
		netTestWaitFor(t, honestWithin, pair[1].Name()+" to show "+pair[0].Name()+"'s line", func() bool { return pair[1].display.saw(line) })
	}
	for _, n := range []*netTestNode{a, b} {
		other := a
		if n == a {
			other = b
		}
		if _, penalized := n.penalties.active(other.ID(), time.Now()); penalized {
			t.Errorf("%s penalized %s", n.Name(), other.Name())
		}
		rep, err := n.log.Verify(context.Background())
		if err != nil || len(rep.Problems) > 0 {
			t.Errorf("%s's log does not verify: %v %v", n.Name(), err, rep.Problems)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("after %s: heap %.1f MiB after GC (bound %d MiB)", what, float64(ms.HeapAlloc)/(1<<20), hostileSyncHeapBound>>20)
	if ms.HeapAlloc > hostileSyncHeapBound {
		t.Errorf("heap %d MiB after GC, above %d MiB", ms.HeapAlloc>>20, hostileSyncHeapBound>>20)
	}
}

// hostileSyncAttacker is a peer that joined target with the given protocol
// version and reads everything target sends, noting its SYNC requests.
type hostileSyncAttacker struct {
	*netTestPeer
	rounds  atomic.Int64 // SYNC requests and SYNCQ rounds of the node's
	answers atomic.Int64 // SYNCED frames: answers to the attacker's requests
	pongs   atomic.Int64
	round   atomic.Uint64 // of the last SYNC request, to end it as asked
	done    chan struct{}
}

func hostileSyncJoin(t *testing.T, target *netTestNode, version int) *hostileSyncAttacker {
	t.Helper()
	key, _ := netTestNewKey(t)
	p := netTestDialTLS(t, target.Addr().String(), key)
	if err := p.write(wire.FrameJoin, wire.JoinMsg{Version: version, ID: p.id, Name: "Mallory", Port: 9}); err != nil {
		t.Fatal(err)
	}
	at := &hostileSyncAttacker{netTestPeer: p, done: make(chan struct{})}
	go func() {
		defer close(at.done)
		for {
			typ, payload, err := p.fr.Next()
			if err != nil {
				return
			}
			switch typ {
			case wire.FrameSync:
				var msg wire.SyncMsg
				if json.Unmarshal(payload, &msg) == nil && !msg.More {
					at.round.Store(msg.Round)
					at.rounds.Add(1)
				}
			case wire.FrameSyncQuery:
				at.rounds.Add(1)
			case wire.FrameSynced:
				at.answers.Add(1)
			case wire.FramePong:
				at.pongs.Add(1)
			}
		}
	}()
	t.Cleanup(func() {
		p.tc.Close()
		<-at.done
	})
	netTestWaitFor(t, 10*time.Second, "the attacker's first SYNC request", func() bool { return at.rounds.Load() > 0 })
	return at
}

// handled waits until the node has read every frame the attacker sent
// so far: its PONG to a PING comes after them.
func (at *hostileSyncAttacker) handled(t *testing.T) {
	t.Helper()
	want := at.pongs.Load() + 1
	if err := at.write(wire.FramePing, wire.PingMsg{Nonce: uint64(want)}); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, time.Minute, "the node to read the attacker's frames", func() bool { return at.pongs.Load() >= want })
}

// hostileSyncSystemLines counts the system lines shown that hold part.
func hostileSyncSystemLines(d *netTestDisplay, part string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, line := range d.system {
		if strings.Contains(line, part) {
			n++
		}
	}
	return n
}

// hostileSyncAuthorsShown counts the authors whose caught-up lines d
// announced: one per "N missed messages from X" block whose line holds
// part, plus those counted together in "and N missed messages from K more
// authors".
func hostileSyncAuthorsShown(d *netTestDisplay, part string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, line := range d.system {
		var msgs, more int
		switch {
		case strings.Contains(line, part):
			n++
		case strings.HasPrefix(line, "and "):
			if _, err := fmt.Sscanf(line, "and %d missed messages from %d more authors", &msgs, &more); err == nil {
				n += more
			}
		}
	}
	return n
}

// hostileSyncKeys makes n fresh author keys.
func hostileSyncKeys(t *testing.T, n int) []ed25519.PrivateKey {
	t.Helper()
	keys := make([]ed25519.PrivateKey, n)
	for i := range keys {
		keys[i], _ = netTestNewKey(t)
	}
	return keys
}

// sendAll writes frames one after another, as fast as the node reads
// them, and returns how many it wrote before an error (the node may drop
// the attacker: that is its right).
func (p *netTestPeer) sendAll(t *testing.T, typ string, msgs []any) int {
	t.Helper()
	_ = p.tc.SetWriteDeadline(time.Now().Add(3 * time.Minute))
	for i, m := range msgs {
		frame, err := wire.EncodeFrame(typ, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.tc.Write(frame); err != nil {
			t.Logf("the node stopped reading the attacker after %d frames: %v", i, err)
			return i
		}
	}
	return len(msgs)
}

func TestGappedAuthorsDoNotCutCatchUp(t *testing.T) {
	a, b := hostileSyncPair(t, nil)
	at := hostileSyncJoin(t, a, wire.ProtocolVersion)
	// 300 fresh authors, each with lines 2, 4, …, 64: 32 holes apiece,
	// about 750 bytes each in a SYNC, 9,600 lines, within a chat burst.
	var msgs []any
	for _, key := range hostileSyncKeys(t, 300) {
		for seq := uint64(2); seq <= 64; seq += 2 {
			msgs = append(msgs, netTestChat(key, seq, "gapped"))
		}
	}
	at.sendAll(t, wire.FrameChat, msgs)
	netTestWaitFor(t, 60*time.Second, "Bob to hold the gapped authors", func() bool {
		sums, err := b.log.Summaries()
		return err == nil && len(sums) >= 300
	})
	// Two more rounds each way between Alice and Bob over the gapped
	// state must end without a broken connection.
	_, _, rounds, _ := syncCounters(a, b)
	netTestWaitFor(t, 30*time.Second, "two more sync rounds between Alice and Bob", func() bool {
		_, _, r, idle := syncCounters(a, b)
		return idle && r >= rounds+4
	})
	for _, n := range []*netTestNode{a, b} {
		if n.logs.has("dropping peer", "frame too large") || n.logs.has("send SYNC", "") {
			t.Errorf("%s could not send its SYNC:\n%s", n.Name(), n.logs)
		}
	}
	hostileSyncAfter(t, a, b, "300 gapped authors")
}

// TestMoreThanTwentyThousandAuthorsStillSync signs and checks 20,500
// lines twice, over a minute under -race on two cores: it runs only with
// P2PCHAT_HOSTILE_MANY=1 (docs/SCALING.md).
func TestMoreThanTwentyThousandAuthorsStillSync(t *testing.T) {
	if os.Getenv("P2PCHAT_HOSTILE_MANY") == "" {
		t.Skip("set P2PCHAT_HOSTILE_MANY=1 to sign and sync 20,500 authors")
	}
	// As an old (version 1) peer the attacker is sent the whole-log SYNC
	// and answers it with 20,500 lines of fresh authors.
	const authors = maxSyncOrigins + 500
	msgs := make([]any, authors)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < authors; i += workers {
				_, key, _ := ed25519.GenerateKey(nil)
				c := netTestChat(key, 1, "one of many")
				msgs[i] = wire.CatchupMsg{Chat: &c}
			}
		}()
	}
	wg.Wait()
	a, b := hostileSyncPair(t, nil)
	at := hostileSyncJoin(t, a, 1)
	at.sendAll(t, wire.FrameCatchup, msgs)
	if err := at.write(wire.FrameSynced, wire.SyncedMsg{Sent: authors}); err != nil {
		t.Logf("SYNCED: %v", err)
	}
	for _, n := range []*netTestNode{a, b} {
		netTestWaitFor(t, 2*time.Minute, n.Name()+" to hold every author", func() bool {
			sums, err := n.log.Summaries()
			return err == nil && len(sums) >= authors
		})
	}
	_, _, rounds, _ := syncCounters(a, b)
	netTestWaitFor(t, 30*time.Second, "two more sync rounds between Alice and Bob", func() bool {
		_, _, r, idle := syncCounters(a, b)
		return idle && r >= rounds+4
	})
	hostileSyncAfter(t, a, b, fmt.Sprintf("%d authors", authors))
}

func TestCatchupNeverEndedWithSyncedIsShownAndBounded(t *testing.T) {
	// Caught-up lines of 300 fresh authors, 10 each (checking 30,000
	// signatures takes minutes under -race), and no SYNCED ever.
	var msgs []any
	for _, key := range hostileSyncKeys(t, 300) {
		for seq := uint64(1); seq <= 10; seq++ {
			c := netTestChat(key, seq, "hostage")
			msgs = append(msgs, wire.CatchupMsg{Chat: &c})
		}
	}
	a, b := hostileSyncPair(t, nil)
	at := hostileSyncJoin(t, a, 1)
	sent := at.sendAll(t, wire.FrameCatchup, msgs)
	if sent < len(msgs) {
		t.Fatalf("Alice stopped reading after %d of %d asked-for lines", sent, len(msgs))
	}
	// The answer never ends, but its lines are shown once it stalls.
	netTestWaitFor(t, time.Minute, "Alice to show the caught-up authors", func() bool {
		return hostileSyncAuthorsShown(a.display, "10 missed messages from Mallory") == 300
	})
	if got := a.display.chatsWithPrefix("hostage"); got > 300*maxCaughtUpShown {
		t.Errorf("Alice showed %d caught-up lines, more than %d per author", got, maxCaughtUpShown)
	}
	hostileSyncAfter(t, a, b, "3,000 caught-up lines never followed by SYNCED")
}

func TestHaveAndSyncedInTurnsCannotMakeANodeAskWithoutEnd(t *testing.T) {
	a, b := hostileSyncPair(t, nil)
	at := hostileSyncJoin(t, a, wire.ProtocolVersion)
	start := time.Now()
	before := at.rounds.Load()
	for range 2000 {
		if err := at.write(wire.FrameHave, struct{}{}); err != nil {
			break
		}
		if err := at.write(wire.FrameSynced, wire.SyncedMsg{Round: at.round.Load()}); err != nil {
			break
		}
	}
	elapsed := time.Since(start)
	// Let whatever Alice queued reach the attacker.
	netTestWaitFor(t, 10*time.Second, "Alice and Bob idle", func() bool {
		_, _, _, idle := syncCounters(a, b)
		return idle
	})
	interval := a.cfg.SyncInterval
	allowed := int64(answerBurst) + 2*int64(elapsed/interval+2)
	if got := at.rounds.Load() - before; got > allowed {
		t.Errorf("2000 HAVE/SYNCED pairs in %s made Alice begin %d rounds, want at most %d", elapsed.Round(time.Millisecond), got, allowed)
	}
	hostileSyncAfter(t, a, b, "2000 HAVE/SYNCED pairs")
}

func TestRepeatedSyncRequestsAreAnsweredAtMostOncePerInterval(t *testing.T) {
	a, b := hostileSyncPair(t, nil)
	for i := range 50 {
		a.say(t, fmt.Sprintf("history %d", i))
	}
	at := hostileSyncJoin(t, a, 1)
	// Each empty request says "I hold nothing": answered, it costs Alice
	// a walk of her whole log.
	start := time.Now()
	for range 200 {
		if err := at.write(wire.FrameSync, wire.SyncMsg{Origins: []wire.SyncOrigin{}}); err != nil {
			t.Fatal(err)
		}
	}
	// Count the answers over four intervals.
	interval := a.cfg.SyncInterval
	window := time.NewTimer(4 * interval)
	<-window.C
	elapsed := time.Since(start)
	allowed := int64(answerBurst) + int64(elapsed/interval) + 1
	if got := at.answers.Load(); got > allowed || got == 0 {
		t.Errorf("200 SYNC requests in %s were answered %d times, want 1 to %d", elapsed.Round(time.Millisecond), got, allowed)
	}
	hostileSyncAfter(t, a, b, "200 SYNC requests")
}

// hostileSyncLiar is a version 2 peer that answers every SYNCQ of the
// node it joined with claim origins under each child prefix, whatever it
// holds, and notes the node's SYNC requests.
type hostileSyncLiar struct {
	*netTestPeer
	answered atomic.Int64 // SYNCQ answered
	requests atomic.Int64 // whole SYNC requests received
	request  chan uint64  // the round of each; dropped if nobody reads
	done     chan struct{}
}

// awaitRequest waits for the node's next SYNC request and returns its
// round; failing, it ends the test with why.
func (l *hostileSyncLiar) awaitRequest(t *testing.T, why string) uint64 {
	t.Helper()
	select {
	case round := <-l.request:
		return round
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
	return 0
}

func hostileSyncLie(t *testing.T, target *netTestNode, claim uint32) *hostileSyncLiar {
	t.Helper()
	key, _ := netTestNewKey(t)
	p := netTestDialTLS(t, target.Addr().String(), key)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	l := &hostileSyncLiar{netTestPeer: p, request: make(chan uint64, 16), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			typ, payload, err := p.fr.Next()
			if err != nil {
				return
			}
			switch typ {
			case wire.FrameSyncQuery:
				var q wire.SyncQueryMsg
				if json.Unmarshal(payload, &q) != nil {
					return
				}
				out := wire.SyncPrintsMsg{Round: q.Round}
				for _, prefix := range q.Prefixes {
					node := wire.PrintNode{Prefix: prefix, Counts: make([]uint32, 16), Sums: make([]byte, 256)}
					for i := range node.Counts {
						node.Counts[i] = claim
					}
					_, _ = rand.Read(node.Sums)
					out.Nodes = append(out.Nodes, node)
				}
				// tls.Conn serializes writes: this one and the
				// test's CATCHUP frames never interleave.
				if p.write(wire.FrameSyncPrints, out) != nil {
					return
				}
				l.answered.Add(1)
			case wire.FrameSync:
				var msg wire.SyncMsg
				if json.Unmarshal(payload, &msg) == nil && !msg.More {
					l.requests.Add(1)
					select {
					case l.request <- msg.Round:
					default:
					}
				}
			}
		}
	}()
	t.Cleanup(func() {
		p.tc.Close()
		<-l.done
	})
	return l
}

// TestFreshAuthorsACatchupAnswerNeverClaimedPayAsLiveOnes has a peer
// answer Alice's SYNC with lines of 3,000 fresh authors, having claimed in
// its fingerprints a few origins under each prefix, all the new authors a
// request of Alice's may bring, or more than that (then Alice asks it for
// nothing, and the lines come unasked). What the claims allow is free; the
// rest pays as live lines: Alice stores at most the claims of the requests
// she sent, the new-author burst, the rate over twice the flood grace and
// one ingest batch, and penalizes the liar for a new-author flood.
func TestFreshAuthorsACatchupAnswerNeverClaimedPayAsLiveOnes(t *testing.T) {
	const (
		fresh          = 3000
		catchupAuthors = 480
		newBurst       = 100
		newRate        = 10
		grace          = 2 * time.Second
	)
	var lines []any
	for i, key := range hostileSyncKeys(t, fresh) {
		c := netTestChat(key, 1, fmt.Sprintf("unclaimed %d", i))
		lines = append(lines, wire.CatchupMsg{Chat: &c})
	}
	for _, tc := range []struct {
		name  string
		claim uint32 // per child prefix
		asked bool   // whether Alice sends the liar a request
	}{
		{"a few claimed", 2, true},
		{"the whole bucket claimed", catchupAuthors / 16, true},
		{"more than the bucket claimed", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := hostileSyncPair(t, func(cfg *Config) {
				cfg.CatchupAuthors = catchupAuthors
				cfg.NewAuthorBurst, cfg.NewAuthorRate = newBurst, newRate
				cfg.FloodGrace = grace
			})
			before, err := a.log.Summaries()
			if err != nil {
				t.Fatal(err)
			}
			liar := hostileSyncLie(t, a, tc.claim)
			if tc.asked {
				select {
				case <-liar.request:
				case <-time.After(10 * time.Second):
					t.Fatal("Alice sent the liar no SYNC")
				}
			} else {
				netTestWaitFor(t, 10*time.Second, "Alice's fingerprint query answered", func() bool { return liar.answered.Load() > 0 })
			}
			sent := liar.sendAll(t, wire.FrameCatchup, lines)
			netTestWaitFor(t, 30*time.Second, "Alice to penalize the liar", func() bool {
				_, penalized := a.penalties.active(liar.id, time.Now())
				return penalized
			})
			netTestWaitFor(t, 10*time.Second, "the liar's connection to end", func() bool {
				return !slices.ContainsFunc(a.Users(), func(u User) bool { return u.ID == liar.id })
			})
			if !a.logs.has("penalized peer", "new-author flood") {
				t.Errorf("Alice penalized the liar, but not for a new-author flood:\n%s", a.logs)
			}
			after, err := a.log.Summaries()
			if err != nil {
				t.Fatal(err)
			}
			stored := len(after) - len(before)
			requests := liar.requests.Load()
			bound := int(requests)*min(16*int(tc.claim), catchupAuthors) + newBurst + newRate*int(2*grace/time.Second) + maxIngestBatch
			t.Logf("%d of %d fresh authors sent; Alice stored %d (bound %d: %d requests sent to the liar)", sent, fresh, stored, bound, requests)
			if tc.asked == (requests == 0) {
				t.Errorf("Alice sent the liar %d requests", requests)
			}
			if stored > bound {
				t.Errorf("Alice stored %d fresh authors, bound %d", stored, bound)
			}
			hostileSyncAfter(t, a, b, fmt.Sprintf("%d fresh authors, %s", fresh, tc.name))
		})
	}
}

// TestNewAuthorsFromCatchupAreBoundedForTheWholeNode has a peer answer
// Alice's SYNC with exactly the fresh authors it claimed, the whole
// bucket, as an honest peer would; a second identity of the same attacker
// then claims as many again on a connection of its own, whose bucket is
// full. The node's bucket is spent: Alice asks the second identity for
// nothing, and stores no more of its authors than live lines may bring.
func TestNewAuthorsFromCatchupAreBoundedForTheWholeNode(t *testing.T) {
	const (
		catchupAuthors = 480
		perPrefix      = catchupAuthors / 16
		newBurst       = 100
		newRate        = 10
		grace          = 2 * time.Second
	)
	// Fresh authors, perPrefix under each first hex digit of their IDs:
	// what a claim of perPrefix under each child of the root vouches for.
	var claimed []any
	under := make([]int, 16)
	for len(claimed) < catchupAuthors {
		key, id := netTestNewKey(t)
		if under[id[0]>>4] == perPrefix {
			continue
		}
		under[id[0]>>4]++
		c := netTestChat(key, 1, fmt.Sprintf("claimed %d", len(claimed)))
		claimed = append(claimed, wire.CatchupMsg{Chat: &c})
	}
	var unclaimed []any
	for i, key := range hostileSyncKeys(t, 1000) {
		c := netTestChat(key, 1, fmt.Sprintf("second identity %d", i))
		unclaimed = append(unclaimed, wire.CatchupMsg{Chat: &c})
	}
	a, b := hostileSyncPair(t, func(cfg *Config) {
		cfg.CatchupAuthors, cfg.CatchupAuthorsPerHour = catchupAuthors, 1
		cfg.NewAuthorBurst, cfg.NewAuthorRate = newBurst, newRate
		cfg.FloodGrace = grace
	})
	origins := func() int {
		s, err := a.log.Summaries()
		if err != nil {
			t.Fatal(err)
		}
		return len(s)
	}
	before := origins()

	first := hostileSyncLie(t, a, perPrefix)
	first.awaitRequest(t, "Alice sent the first identity no SYNC")
	first.sendAll(t, wire.FrameCatchup, claimed)
	netTestWaitFor(t, 30*time.Second, "Alice to store every claimed author", func() bool { return origins()-before >= catchupAuthors })
	if _, penalized := a.penalties.active(first.id, time.Now()); penalized {
		t.Error("Alice penalized a peer that sent what it claimed")
	}

	second := hostileSyncLie(t, a, perPrefix)
	netTestWaitFor(t, 10*time.Second, "Alice's fingerprint query to the second identity answered", func() bool { return second.answered.Load() > 0 })
	second.sendAll(t, wire.FrameCatchup, unclaimed)
	netTestWaitFor(t, 30*time.Second, "Alice to penalize the second identity", func() bool {
		_, penalized := a.penalties.active(second.id, time.Now())
		return penalized
	})
	if got := second.requests.Load(); got != 0 {
		t.Errorf("Alice sent the second identity %d SYNC requests with the node's bucket spent", got)
	}
	stored := origins() - before - catchupAuthors
	bound := newBurst + newRate*int(2*grace/time.Second) + maxIngestBatch
	t.Logf("the second identity sent %d fresh authors; Alice stored %d of them (bound %d)", len(unclaimed), stored, bound)
	if stored > bound {
		t.Errorf("Alice stored %d fresh authors of the second identity, bound %d", stored, bound)
	}
	hostileSyncAfter(t, a, b, "a second identity claiming fresh authors")
}

// hostileSyncBigRequest is the frames of a version 1 SYNC request that
// never ends, listing fresh origins with every missing range a frame
// allows, about bytes long: what holds the most memory for its bytes.
func hostileSyncBigRequest(t *testing.T, bytes int) []any {
	t.Helper()
	var frames []any
	for size := 0; size < bytes; {
		msg := wire.SyncMsg{More: true}
		for range 40 {
			o := wire.SyncOrigin{Max: 1 << 40}
			rand.Read(o.Origin[:])
			for r := range uint64(wire.MaxSyncRanges) {
				o.Missing = append(o.Missing, eventlog.Range{From: 2*r + 1, To: 2*r + 1})
			}
			msg.Origins = append(msg.Origins, o)
		}
		frame, err := wire.EncodeFrame(wire.FrameSync, msg, 0)
		if err != nil {
			t.Fatal(err)
		}
		size += len(frame)
		frames = append(frames, msg)
	}
	return frames
}

// TestSyncRequestsOfManyConnectionsShareOneRoom: ten fresh keys each
// send the largest version 1 SYNC request Alice reads, 4 MiB, and never
// end it. Each alone is within its connection's bounds; together they
// would hold over 40 MiB of Alice's memory for as long as they stay
// connected. They hold at most the node's room for requests, nobody is
// penalized for finding it full, and the room is whole again once they
// are gone.
func TestSyncRequestsOfManyConnectionsShareOneRoom(t *testing.T) {
	a, b := hostileSyncPair(t, nil)
	var attackers []*hostileSyncAttacker
	for range 10 {
		at := hostileSyncJoin(t, a, 1)
		at.sendAll(t, wire.FrameSync, hostileSyncBigRequest(t, maxSyncRequestBytesV1+wire.DefaultMaxFrame))
		at.handled(t)
		attackers = append(attackers, at)
	}
	if len(a.logs.lines("no room for all of the peer's SYNC request; it is answered up to where it was read")) == 0 {
		t.Error("Alice never said a request found no room")
	}
	for _, at := range attackers {
		if _, penalized := a.penalties.active(at.id, time.Now()); penalized {
			t.Error("Alice penalized a peer whose request found no room")
		}
	}
	hostileSyncAfter(t, a, b, "ten never-ending SYNC requests of 4 MiB")

	for _, at := range attackers {
		at.tc.Close()
	}
	netTestWaitFor(t, 10*time.Second, "the room for SYNC requests whole again", func() bool {
		if !a.syncRoom.TryAcquire(syncRequestsRoom) {
			return false
		}
		a.syncRoom.Release(syncRequestsRoom)
		return true
	})
}
