package peering

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// gappedState is an origin holding seqs 2, 4, …, 64: 32 holes, the most a
// SYNC lists, about 750 bytes encoded.
func gappedState(i int) eventlog.OriginState {
	var id eventlog.NodeID
	sum := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	copy(id[:], sum[:])
	s := eventlog.OriginState{Origin: id, Max: 64}
	for seq := uint64(1); seq < 64; seq += 2 {
		s.Missing = append(s.Missing, eventlog.Range{From: seq, To: seq})
	}
	return s
}

func TestSyncFramesStayUnderTheFrameLimitWhateverTheirRanges(t *testing.T) {
	for _, n := range []int{88, 300, 1000} {
		states := make([]eventlog.OriginState, n)
		for i := range states {
			states[i] = gappedState(i)
		}
		frames, listed, err := syncFrames(states, wire.DefaultMaxFrame)
		if err != nil {
			t.Fatalf("%d gapped origins: %v", n, err)
		}
		if listed != n {
			t.Errorf("%d gapped origins: listed %d", n, listed)
		}
		seen := 0
		for _, f := range frames {
			if len(f) > wire.DefaultMaxFrame {
				t.Errorf("%d gapped origins: a frame of %d bytes", n, len(f))
			}
			_, payload, err := wire.NewFrameReader(bytes.NewReader(f), 0).Next()
			if err != nil {
				t.Fatal(err)
			}
			var msg wire.SyncMsg
			if err := json.Unmarshal(payload, &msg); err != nil {
				t.Fatal(err)
			}
			if err := msg.Validate(); err != nil {
				t.Errorf("a frame a version 1 peer would refuse: %v", err)
			}
			seen += len(msg.Origins)
		}
		if seen != n {
			t.Errorf("%d gapped origins: %d in the frames", n, seen)
		}
	}
}

func TestAWholeLogSyncNeverListsMoreOriginsThanAPeerAccepts(t *testing.T) {
	states := make([]eventlog.OriginState, maxSyncOrigins+500)
	for i := range states {
		states[i].Origin[0], states[i].Origin[1], states[i].Origin[2] = byte(i>>16), byte(i>>8), byte(i)
		states[i].Watermark, states[i].Max = 1, 1
	}
	_, listed, err := syncFrames(states, wire.DefaultMaxFrame)
	if err != nil || listed != maxSyncOrigins {
		t.Fatalf("listed %d, %v; want %d", listed, err, maxSyncOrigins)
	}
}

// catchupTestConn is a connection with no socket, for the read loop's side
// of catch-up.
func catchupTestConn() *conn {
	c := budgetTestConn()
	c.ingest = make(chan inbound, 16)
	c.ingestRoom = newQueueRoom(int64(c.n.cfg.IngestQueueBytes), ingestFreeBytes, semaphore.NewWeighted(ingestRoomBytes))
	c.done = context.Background()
	c.n.caught = newCatchupView()
	c.n.catchupAuthors = nodeCatchupAuthors(&c.n.cfg)
	c.n.syncRoom = semaphore.NewWeighted(syncRequestsRoom)
	c.cu = newCatchup(c.n, c, wire.ProtocolVersion)
	return c
}

func TestCatchupIsFreeOnlyForWhatThisNodeSaidItLacks(t *testing.T) {
	c := catchupTestConn()
	cu := c.cu
	held := wire.SyncOrigin{Origin: wiretest.ID(1), Watermark: 2, Max: 9, Missing: []eventlog.Range{{From: 4, To: 5}}}
	a := &askedState{origins: map[eventlog.NodeID]wire.SyncOrigin{held.Origin: held}, free: held.Lacked() + 1}
	a.scope.add(hexPrefixOf(held.Origin, 2))
	cu.phase.Store(phaseAwaiting)
	cu.mu.Lock()
	cu.asked = a
	cu.mu.Unlock()
	line := func(origin eventlog.NodeID, seq uint64) eventlog.Signed {
		return eventlog.Chat{Origin: origin, OriginSeq: seq}
	}
	ctx := context.Background()
	// The budget allows one frame: the first charged line passes, the
	// second is a flood.
	for _, seq := range []uint64{4, 5, 10} { // two holes and the tail: free
		if _, err := cu.admit(ctx, line(held.Origin, seq), 100); err != nil {
			t.Fatalf("seq %d, which this node said it lacks: %v", seq, err)
		}
	}
	if _, err := cu.admit(ctx, line(held.Origin, 3), 100); err != nil {
		t.Fatalf("the first charged line is within the burst: %v", err)
	}
	if _, err := cu.admit(ctx, line(held.Origin, 11), 100); !errors.Is(err, errPenalized) {
		t.Errorf("a line past the count asked for: %v, want it charged", err)
	}
}

// catchupTestAsk puts a request in flight on c: a, with every charged
// line let through, so that the tests see which lines are free.
func catchupTestAsk(c *conn, a *askedState) {
	c.budget.chat = rate.NewLimiter(rate.Inf, 0)
	c.cu.mu.Lock()
	c.cu.asked = a
	c.cu.mu.Unlock()
	c.cu.phase.Store(phaseAwaiting)
}

// catchupTestOrigin is an origin ID whose first nibble is the hex digit
// first.
func catchupTestOrigin(first, i byte) eventlog.NodeID {
	id := wiretest.ID(i)
	id[0] = byte(strings.IndexByte(wire.HexDigits, first))<<4 | id[0]&0x0f
	return id
}

func TestUnknownAuthorsAreFreeOnlyUpToWhatThePeerClaimed(t *testing.T) {
	c := catchupTestConn()
	// The peer said it holds 2 origins under "0" and 1 under "f".
	a := &askedState{origins: map[eventlog.NodeID]wire.SyncOrigin{}, free: 100, claims: map[string]int64{"0": 2, "f": 1}}
	a.scope.add("0")
	a.scope.add("f")
	catchupTestAsk(c, a)
	ctx := context.Background()
	for _, tc := range []struct {
		origin eventlog.NodeID
		seq    uint64
		free   bool
	}{
		{catchupTestOrigin('0', 1), 1, true},
		{catchupTestOrigin('0', 1), 2, true}, // a further line of one let in
		{catchupTestOrigin('0', 2), 1, true},
		{catchupTestOrigin('0', 3), 1, false}, // past the claim under "0"
		{catchupTestOrigin('0', 2), 2, true},
		{catchupTestOrigin('f', 1), 1, true},
		{catchupTestOrigin('f', 2), 1, false},
		{catchupTestOrigin('7', 1), 1, false}, // outside the scope
	} {
		free, err := c.cu.admit(ctx, eventlog.Chat{Origin: tc.origin, OriginSeq: tc.seq}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if free != tc.free {
			t.Errorf("origin %x seq %d: free %v, want %v", tc.origin[:2], tc.seq, free, tc.free)
		}
	}
}

func TestUnknownAuthorsAreBoundedPerConnectionWhateverThePeerClaims(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]int64
		bucket int
		want   int
	}{
		{"no claims: the bucket", nil, 3, 3},
		{"a claim past the bucket", map[string]int64{"": 1 << 31}, 3, 3},
		{"a version 1 request: its own bound", map[string]int64{"": 4}, 100, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := catchupTestConn()
			c.cu.freeAuthors = rate.NewLimiter(0, tc.bucket)
			a := &askedState{origins: map[eventlog.NodeID]wire.SyncOrigin{}, free: 100, claims: tc.claims}
			catchupTestAsk(c, a)
			freed := 0
			for i := range 10 {
				free, err := c.cu.admit(context.Background(), eventlog.Chat{Origin: wiretest.ID(byte(i)), OriginSeq: 1}, 100)
				if err != nil {
					t.Fatal(err)
				}
				if free {
					freed++
				}
			}
			if freed != tc.want {
				t.Errorf("%d of 10 unknown authors came free, want %d", freed, tc.want)
			}
		})
	}
}

func TestARequestAsksOnlyForTheNewAuthorsItHasRoomFor(t *testing.T) {
	alice := netTestStart(t, "Alice", nil)
	c := &conn{n: alice.Node, sendq: make(chan []byte, 1000), closing: make(chan struct{})}
	c.cu = newCatchup(alice.Node, c, wire.ProtocolVersion)
	c.cu.freeAuthors = rate.NewLimiter(0, 100)
	claims := map[string]uint32{"0": 60, "1": 50, "2": 40, "3": 1 << 30}
	if err := c.cu.sendScoped(nil, []string{"0", "1", "2", "3"}, claims, false); err != nil {
		t.Fatal(err)
	}
	a := c.cu.asked
	if a == nil {
		t.Fatal("no request sent")
	}
	var got []string
	for p := range a.scope.set {
		got = append(got, p)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"0", "2"}) || !a.cut {
		t.Errorf("asked for %v (cut %v), want 0 and 2 (60 + 40 of 100) and the rest left for later", got, a.cut)
	}
	if a.claims["0"] != 60 || a.claims["2"] != 40 {
		t.Errorf("claims %v", a.claims)
	}
}

func TestCatchupOutsideTheScopeOrAfterSyncedIsCharged(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(cu *catchup)
		line  eventlog.Signed
	}{
		{"outside the scope", func(cu *catchup) {
			a := &askedState{origins: map[eventlog.NodeID]wire.SyncOrigin{}, free: 10}
			a.scope.add("0")
			cu.mu.Lock()
			cu.asked = a
			cu.mu.Unlock()
			cu.phase.Store(phaseAwaiting)
		}, eventlog.Chat{Origin: eventlog.NodeID{0xf0}, OriginSeq: 1}},
		{"nothing asked", func(*catchup) {}, eventlog.Chat{Origin: eventlog.NodeID{0x00}, OriginSeq: 1}},
		{"after SYNCED", func(cu *catchup) {
			cu.mu.Lock()
			cu.asked = &askedState{origins: map[eventlog.NodeID]wire.SyncOrigin{}, free: 10}
			cu.mu.Unlock()
			cu.phase.Store(phaseAwaiting)
			if err := cu.onSynced([]byte(`{"sent":0}`)); err != nil {
				panic(err)
			}
		}, eventlog.Chat{Origin: eventlog.NodeID{0x00}, OriginSeq: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := catchupTestConn()
			tc.setup(c.cu)
			ctx := context.Background()
			if _, err := c.cu.admit(ctx, tc.line, 100); err != nil {
				t.Fatalf("first line within the burst: %v", err)
			}
			if _, err := c.cu.admit(ctx, tc.line, 100); !errors.Is(err, errPenalized) {
				t.Errorf("second line: %v, want it charged as chat", err)
			}
		})
	}
}

func TestASyncedNobodyAwaitsEndsNothing(t *testing.T) {
	c := catchupTestConn()
	c.cu.phase.Store(phaseReconciling)
	if err := c.cu.onSynced([]byte(`{"sent":0}`)); err != nil {
		t.Fatal(err)
	}
	if c.cu.phase.Load() != phaseReconciling || len(c.ingest) != 0 {
		t.Error("a SYNCED before this node's SYNC ended its round")
	}
}

func TestALateSyncedDoesNotEndANewerRequest(t *testing.T) {
	c := catchupTestConn()
	c.cu.phase.Store(phaseAwaiting)
	c.cu.awaiting.Store(7)
	if err := c.cu.onSynced([]byte(`{"sent":3,"round":6}`)); err != nil {
		t.Fatal(err)
	}
	if !c.cu.busy() || len(c.ingest) != 0 {
		t.Fatal("the end of round 6 ended round 7")
	}
	if err := c.cu.onSynced([]byte(`{"sent":3,"round":7}`)); err != nil {
		t.Fatal(err)
	}
	if c.cu.busy() || len(c.ingest) != 1 {
		t.Error("the end of round 7 did not end it")
	}
}

func hexPrefixOf(id eventlog.NodeID, n int) string {
	var b []byte
	for i := range n {
		b = append(b, wire.HexDigits[nibble(id, i)])
	}
	return string(b)
}

// summariesOf returns sorted summaries of the given states.
func summariesOf(states []eventlog.OriginState) []eventlog.OriginSummary {
	out := make([]eventlog.OriginSummary, len(states))
	for i, s := range states {
		out[i] = eventlog.OriginSummary{Origin: s.Origin, Max: s.Max, Digest: s.Digest()}
	}
	slices.SortFunc(out, func(a, b eventlog.OriginSummary) int { return bytes.Compare(a.Origin[:], b.Origin[:]) })
	return out
}

func TestFingerprintsDifferOnlyOnThePathToWhatDiffers(t *testing.T) {
	states := make([]eventlog.OriginState, 5000)
	for i := range states {
		states[i] = gappedState(i)
	}
	ours := summariesOf(states)
	changed := states[1234]
	changed.Missing = changed.Missing[1:] // one hole filled
	theirsStates := slices.Clone(states)
	theirsStates[1234] = changed
	theirs := summariesOf(theirsStates)
	path := hexPrefixOf(changed.Origin, wire.MaxPrefixDepth)
	for depth := 0; depth < 3; depth++ {
		p := path[:depth]
		a, b := childPrints(ours, p), childPrints(theirs, p)
		for i := range 16 {
			differs := a.sums[i] != b.sums[i]
			want := wire.HexDigits[i] == path[depth]
			if differs != want || a.counts[i] != b.counts[i] {
				t.Errorf("prefix %q child %c: differs=%v, want %v", p, wire.HexDigits[i], differs, want)
			}
		}
	}
	lo, hi := prefixRange(ours, path[:3])
	if hi-lo > leafOrigins || hi <= lo {
		t.Errorf("prefix %q holds %d origins of 5000, want a small leaf", path[:3], hi-lo)
	}
}

func TestPrefixSetCoversItsPrefixesOnly(t *testing.T) {
	var all prefixSet
	if !all.contains(eventlog.NodeID{0xab}) {
		t.Error("the empty scope must cover every origin")
	}
	var s prefixSet
	s.add("a")
	s.add("ab3") // inside "a": walked once
	s.add("0f")
	snap := summariesOf([]eventlog.OriginState{
		{Origin: eventlog.NodeID{0xab, 0x30}}, {Origin: eventlog.NodeID{0xa0}}, {Origin: eventlog.NodeID{0x0f, 1}},
		{Origin: eventlog.NodeID{0x0e}}, {Origin: eventlog.NodeID{0xb0}},
	})
	var got []eventlog.NodeID
	s.each(snap, func(x eventlog.OriginSummary) bool { got = append(got, x.Origin); return true })
	want := []eventlog.NodeID{{0x0f, 1}, {0xa0}, {0xab, 0x30}}
	if !slices.Equal(got, want) {
		t.Errorf("each visited %x, want %x", got, want)
	}
	for _, x := range snap {
		if s.contains(x.Origin) != slices.Contains(want, x.Origin) {
			t.Errorf("contains(%x) = %v", x.Origin[:2], s.contains(x.Origin))
		}
	}
}

func TestSyncQueriesAndPrintsRefuseNonsense(t *testing.T) {
	long := "0123456789abcdef0"
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"no prefixes", wire.SyncQueryMsg{}.Validate()},
		{"upper case", wire.SyncQueryMsg{Prefixes: []string{"AB"}}.Validate()},
		{"too deep", wire.SyncQueryMsg{Prefixes: []string{long[:wire.MaxPrefixDepth]}}.Validate()},
		{"too many", wire.SyncQueryMsg{Prefixes: make([]string, wire.MaxQueryPrefixes+1)}.Validate()},
		{"short sums", wire.SyncPrintsMsg{Nodes: []wire.PrintNode{{Counts: make([]uint32, 16), Sums: make([]byte, 100)}}}.Validate()},
		{"scope not hex", wire.SyncMsg{Scope: []string{"xyz"}}.Validate()},
	} {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := (wire.SyncQueryMsg{Prefixes: []string{"", "0a"}}).Validate(); err != nil {
		t.Errorf("a plain query refused: %v", err)
	}
}

func TestTheLargestScopedSyncIsOneThePeerAccepts(t *testing.T) {
	alice := netTestStart(t, "Alice", nil)
	// 3000 authors with 32 holes each: about 2.2 MB of SYNC if all were
	// listed. The log does not check signatures; the peer never sees
	// these lines.
	var bodies []eventlog.Body
	for i := range 3000 {
		origin := gappedState(i).Origin
		for seq := uint64(2); seq <= 64; seq += 2 {
			bodies = append(bodies, eventlog.Chat{Origin: origin, OriginSeq: seq, Name: "x", Text: "t"})
		}
	}
	for from := 0; from < len(bodies); from += 4096 {
		if _, err := alice.log.Append(context.Background(), bodies[from:min(from+4096, len(bodies))]...); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := alice.log.Summaries()
	if err != nil {
		t.Fatal(err)
	}
	var leaves []string
	for i := range 256 {
		leaves = append(leaves, string([]byte{wire.HexDigits[i/16], wire.HexDigits[i%16]}))
	}
	c := &conn{n: alice.Node, sendq: make(chan []byte, 1000), closing: make(chan struct{})}
	c.cu = newCatchup(alice.Node, c, wire.ProtocolVersion)
	if err := c.cu.sendScoped(snap, leaves, nil, false); err != nil {
		t.Fatal(err)
	}
	peer := catchupTestConn()
	total, frames := 0, len(c.sendq)
	for range frames {
		f := <-c.sendq
		if len(f) > wire.DefaultMaxFrame {
			t.Fatalf("a SYNC frame of %d bytes", len(f))
		}
		_, payload, err := wire.NewFrameReader(bytes.NewReader(f), 0).Next()
		if err != nil {
			t.Fatal(err)
		}
		total += len(payload)
		if err := peer.cu.onSync(payload); err != nil {
			t.Fatalf("the peer refused the request after %d bytes: %v", total, err)
		}
	}
	req := <-peer.cu.reqs
	t.Logf("%d frames, %d bytes, %d of 3000 origins, %d of 256 prefixes", frames, total, len(req.origins), len(req.scope.set))
	if len(req.scope.set) == 0 || len(req.scope.set) == 256 {
		t.Errorf("%d of 256 prefixes sent: want the request cut to its byte budget", len(req.scope.set))
	}
	if len(c.cu.asked.origins) != len(req.origins) {
		t.Errorf("the node counts %d origins asked, the peer read %d", len(c.cu.asked.origins), len(req.origins))
	}
}

func TestAnOldPeersRequestPastTheBoundIsAnsweredUpToWhereItWasRead(t *testing.T) {
	alice := netTestStart(t, "Alice", nil)
	low, high := eventlog.NodeID{0x10}, eventlog.NodeID{0xf0}
	for _, origin := range []eventlog.NodeID{low, high} {
		if _, err := alice.log.Append(context.Background(), eventlog.Chat{Origin: origin, OriginSeq: 1, Name: "x", Text: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	c := &conn{n: alice.Node, catchq: make(chan []byte, 16), closing: make(chan struct{}),
		catchRoom: newQueueRoom(catchQueueBytes(&alice.cfg), catchFreeBytes, alice.catchRoom), done: context.Background()}
	c.cu = newCatchup(alice.Node, c, 1)
	// The peer lists origins in ID order: 20,000 that Alice has never
	// heard of, all below low, then one more, which she does not read.
	var listed []wire.SyncOrigin
	for i := range maxSyncOrigins {
		var id eventlog.NodeID
		id[1], id[2] = byte(i>>8), byte(i)
		listed = append(listed, wire.SyncOrigin{Origin: id, Watermark: 1, Max: 1})
	}
	listed = append(listed, wire.SyncOrigin{Origin: eventlog.NodeID{0x50}, Watermark: 1, Max: 1})
	for start := 0; start < len(listed); start += wire.MaxSyncOriginsPerFrame {
		end := min(start+wire.MaxSyncOriginsPerFrame, len(listed))
		payload, err := json.Marshal(wire.SyncMsg{Origins: listed[start:end], More: end < len(listed)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.cu.onSync(payload); err != nil {
			t.Fatalf("an old peer's request refused: %v", err)
		}
	}
	req := <-c.cu.reqs
	if !req.capped || req.capFrom != (eventlog.NodeID{0x50}) {
		t.Fatalf("capped %v from %x, want capped from 50…", req.capped, req.capFrom[:1])
	}
	if err := c.cu.answerSync(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var got []eventlog.NodeID
	for len(c.catchq) > 0 {
		typ, payload, err := wire.NewFrameReader(bytes.NewReader(<-c.catchq), 0).Next()
		if err != nil {
			t.Fatal(err)
		}
		if typ == wire.FrameCatchup {
			var m wire.CatchupMsg
			if err := json.Unmarshal(payload, &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Chat.Origin)
		}
	}
	if !slices.Equal(got, []eventlog.NodeID{low}) {
		t.Errorf("answered with lines of %x, want only the origin below where reading stopped", got)
	}
}

// TestARequestThatFindsNoRoomIsCutOrDroppedNotPunished: with the node's
// room for SYNC requests taken, a request within its free part is still
// answered; a larger version 1 request is cut at the first frame that
// found no room and answered up to there; a larger version 2 request is
// read to its end and dropped. None is a violation, and a request
// answered, dropped or left behind by its connection gives its room back.
func TestARequestThatFindsNoRoomIsCutOrDroppedNotPunished(t *testing.T) {
	alice := netTestStart(t, "Alice", nil)
	newCU := func(version int) *catchup {
		c := &conn{n: alice.Node, catchq: make(chan []byte, 16), closing: make(chan struct{}),
			catchRoom: newQueueRoom(catchQueueBytes(&alice.cfg), catchFreeBytes, alice.catchRoom), done: context.Background()}
		c.cu = newCatchup(alice.Node, c, version)
		return c.cu
	}
	// Frames of 150 origins each, IDs ascending from first: about 14 KB.
	frames := func(first byte, n int, round uint64) [][]byte {
		var out [][]byte
		for f := range n {
			msg := wire.SyncMsg{More: f < n-1, Round: round}
			for i := range 150 {
				var id eventlog.NodeID
				id[0], id[1], id[2] = first, byte(f), byte(i)
				msg.Origins = append(msg.Origins, wire.SyncOrigin{Origin: id, Watermark: 1, Max: 1})
			}
			payload, err := json.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, payload)
		}
		return out
	}
	feed := func(cu *catchup, payloads [][]byte) {
		t.Helper()
		for _, p := range payloads {
			if err := cu.onSync(p); err != nil {
				t.Fatalf("a request refused: %v", err)
			}
		}
	}
	if !alice.syncRoom.TryAcquire(syncRequestsRoom) {
		t.Fatal("the room is not whole at start")
	}
	roomWhole := func() bool {
		if !alice.syncRoom.TryAcquire(syncRequestsRoom) {
			return false
		}
		alice.syncRoom.Release(syncRequestsRoom)
		return true
	}

	small := newCU(2)
	feed(small, frames(0x10, 2, 7))
	if req := <-small.reqs; req.held != 0 || len(req.origins) != 300 {
		t.Errorf("a request within its free part: held %d, %d origins; want 0 held, 300 origins", req.held, len(req.origins))
	}

	old := newCU(1)
	big := frames(0x20, 12, 0) // about 170 KB
	roomless, read := 0, 0     // the first frame past the free part
	for read <= syncRequestFreeBytes {
		read += len(big[roomless])
		roomless++
	}
	roomless--
	feed(old, big)
	req := <-old.reqs
	if !req.capped || req.capFrom != (eventlog.NodeID{0x20, byte(roomless)}) || len(req.origins) != roomless*150 {
		t.Errorf("a version 1 request without room: capped %v from %x, %d origins; want capped at frame %d's first origin, %d origins",
			req.capped, req.capFrom[:2], len(req.origins), roomless, roomless*150)
	}

	v2 := newCU(2)
	feed(v2, frames(0x30, 12, 8))
	if len(v2.reqs) != 0 || v2.acc != nil {
		t.Error("a version 2 request without room was kept")
	}

	alice.syncRoom.Release(syncRequestsRoom)
	feed(v2, frames(0x30, 12, 9))
	queued := <-v2.reqs
	if queued.held == 0 || len(queued.origins) != 12*150 {
		t.Fatalf("with room: held %d, %d origins; want some held, 1800 origins", queued.held, len(queued.origins))
	}
	if roomWhole() {
		t.Fatal("a queued request holds no room")
	}
	v2.reqs <- queued
	feed(v2, frames(0x40, 6, 10)[:5]) // still being read
	v2.releaseRequests()
	if !roomWhole() {
		t.Error("a closed connection's requests kept their room")
	}
}

// FuzzCatchupFrames feeds arbitrary payloads to the read loop's side of
// catch-up, as a hostile peer could: SYNC, SYNCQ and SYNCFP. Whatever is
// accepted must be within the bounds the ask and answer loops rely on.
func FuzzCatchupFrames(f *testing.F) {
	for _, v := range []any{
		wire.SyncMsg{Scope: []string{"", "0a"}, Origins: []wire.SyncOrigin{{Origin: wiretest.ID(1), Watermark: 1, Max: 3, Missing: []eventlog.Range{{From: 2, To: 2}}}}},
		wire.SyncQueryMsg{Round: 1, Prefixes: []string{"", "f"}},
		wire.SyncPrintsMsg{Round: 1, Nodes: []wire.PrintNode{{Prefix: "a", Counts: make([]uint32, 16), Sums: make([]byte, 256)}}},
	} {
		payload, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		for typ := range byte(3) {
			f.Add(typ, payload)
		}
	}
	f.Add(byte(0), []byte(`{"origins":null,"scope":["G"]}`))
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		c := catchupTestConn()
		cu := c.cu
		switch typ % 3 {
		case 0:
			if cu.onSync(payload) == nil && cu.acc == nil {
				req := <-cu.reqs
				for p := range req.scope.set {
					if wire.CheckPrefix(p) != nil {
						t.Fatalf("accepted scope %q", p)
					}
				}
			}
		case 1:
			if cu.onQuery(payload) == nil {
				q := <-cu.queries
				if len(q.Prefixes) == 0 || len(q.Prefixes) > wire.MaxQueryPrefixes {
					t.Fatalf("accepted a SYNCQ of %d prefixes", len(q.Prefixes))
				}
				for _, p := range q.Prefixes {
					childPrints(nil, p) // must not panic on anything accepted
				}
			}
		case 2:
			if cu.onPrints(payload) == nil {
				m := <-cu.prints
				for _, n := range m.Nodes {
					if len(n.Counts) != 16 || len(n.Sums) != 256 || len(n.Prefix) > wire.MaxPrefixDepth {
						t.Fatalf("accepted a SYNCFP node %+v", n)
					}
				}
			}
		}
	})
}

func TestTheCaughtUpViewIsShownOnceItReachesItsBound(t *testing.T) {
	n := netTestStart(t, "Alice", nil)
	stranger := &conn{} // a peer that owes an answer and never gives it
	n.caught.asked(stranger)
	text := string(bytes.Repeat([]byte("x"), 300))
	const authors = 5000
	for i := range authors {
		var origin eventlog.NodeID
		origin[0], origin[1] = byte(i>>8), byte(i)
		n.addCaughtUp(eventlog.Chat{Origin: origin, OriginSeq: 1, Name: "a", Text: text})
		n.caught.mu.Lock()
		held := n.caught.pending.bytes
		n.caught.mu.Unlock()
		if held >= maxCaughtUpBytes {
			t.Fatalf("the view holds %d bytes, bound %d", held, maxCaughtUpBytes)
		}
	}
	shown := hostileSyncAuthorsShown(n.display, "1 missed message from")
	if shown == 0 || shown == authors {
		t.Errorf("%d of %d authors shown while a peer still owed its answer: want the view shown at its bound, and the rest held", shown, authors)
	}
	n.caughtUp(stranger)
	if got := hostileSyncAuthorsShown(n.display, "1 missed message from"); got != authors {
		t.Errorf("%d authors shown in all, want %d", got, authors)
	}
	// Authors cost nothing: each block names at most a few, and counts
	// the rest in one line.
	blocks := hostileSyncSystemLines(n.display, "more authors; /history has them all")
	if named := hostileSyncSystemLines(n.display, "1 missed message from"); named > (blocks+1)*maxCaughtUpAuthorsShown {
		t.Errorf("%d authors named in %d blocks, more than %d a block", named, blocks+1, maxCaughtUpAuthorsShown)
	}
}
