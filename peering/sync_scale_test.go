package peering

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// syncScaleAuthors is how many authors TestSyncCostGrowsWithTheDifference
// puts in both logs: a few thousand by default, so that it runs with the
// other tests; P2PCHAT_SYNC_AUTHORS=100000 gives the figures of
// docs/SCALING.md (about a minute without -race: signing and storing the
// fixture is most of it).
func syncScaleAuthors(t *testing.T) int {
	if v := os.Getenv("P2PCHAT_SYNC_AUTHORS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("P2PCHAT_SYNC_AUTHORS=%q: want a number of at least 100", v)
		}
		return n
	}
	return 1000
}

// syncScaleKey is author i's key, the same in every run.
func syncScaleKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("sync scale author "), uint64(i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

// syncScaleLines signs, on every core, the lines of authors from..to-1 at
// the seqs seqs(i) gives.
func syncScaleLines(from, to int, seqs func(i int) []uint64) []eventlog.Body {
	per := make([][]eventlog.Body, to-from)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += workers {
				key := syncScaleKey(i)
				for _, seq := range seqs(i) {
					c := eventlog.Chat{OriginSeq: seq, OriginTime: time.Unix(1_700_000_000+int64(seq), 0), Name: "a" + strconv.Itoa(i%1000), Text: "line " + strconv.FormatUint(seq, 10)}
					c.Sign(key)
					per[i-from] = append(per[i-from], c)
				}
			}
		}()
	}
	wg.Wait()
	var out []eventlog.Body
	for _, p := range per {
		out = append(out, p...)
	}
	return out
}

func syncScaleAppend(t *testing.T, l *eventlog.Log, bodies []eventlog.Body) {
	t.Helper()
	for from := 0; from < len(bodies); from += 4096 {
		if _, err := l.Append(context.Background(), bodies[from:min(from+4096, len(bodies))]...); err != nil {
			t.Fatal(err)
		}
	}
}

// mainSyncBytes is what the SYNC request of the previous protocol (every
// origin, 300 to a frame whatever their size) costs for states: its bytes,
// and its largest frame, which the frame limit refused past 64 KiB.
func mainSyncBytes(t *testing.T, states []eventlog.OriginState) (total, largest int) {
	t.Helper()
	for start := 0; start == 0 || start < len(states); start += wire.MaxSyncOriginsPerFrame {
		end := min(start+wire.MaxSyncOriginsPerFrame, len(states))
		msg := wire.SyncMsg{More: end < len(states)}
		for _, s := range states[start:end] {
			msg.Origins = append(msg.Origins, syncOrigin(s))
		}
		frame, err := wire.EncodeFrame(wire.FrameSync, msg, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		total += len(frame)
		largest = max(largest, len(frame))
		if len(states) == 0 {
			break
		}
	}
	return total, largest
}

// syncCounters sums what both ends of the Alice–Bob connection sent for
// catch-up.
func syncCounters(a, b *netTestNode) (request, answer, rounds uint64, idle bool) {
	idle = true
	for _, pair := range [][2]*netTestNode{{a, b}, {b, a}} {
		pair[0].mu.Lock()
		c := pair[0].conns[pair[1].ID()]
		pair[0].mu.Unlock()
		if c == nil {
			return 0, 0, 0, false
		}
		request += c.cu.requestBytes.Load()
		answer += c.cu.answerBytes.Load()
		rounds += c.cu.roundsBegun.Load()
		idle = idle && !c.cu.busy()
	}
	return request, answer, rounds, idle
}

// TestSyncCostGrowsWithTheDifference puts the same authors in two logs, a
// tenth of them (or P2PCHAT_SYNC_GAPPED) with 32 holes each (seqs 2, 4,
// …, 64), and 100 lines
// more in Alice's, half of them from authors Bob has never seen. Once Bob
// dials, he must catch up exactly those, and each sync interval after
// must cost a few hundred bytes, however many authors there are.
func TestSyncCostGrowsWithTheDifference(t *testing.T) {
	authors := syncScaleAuthors(t)
	gapped := authors / 10
	if v := os.Getenv("P2PCHAT_SYNC_GAPPED"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 50 || n > authors {
			t.Fatalf("P2PCHAT_SYNC_GAPPED=%q: want 50 to %d authors with 32 holes", v, authors)
		}
		gapped = n
	}
	const interval = 500 * time.Millisecond
	tweak := func(cfg *Config) { cfg.SyncInterval = interval }
	a := netTestStart(t, "Alice", tweak)
	b := netTestStart(t, "Bob", tweak)

	start := time.Now()
	common := syncScaleLines(0, authors, func(i int) []uint64 {
		if i < gapped {
			var seqs []uint64
			for s := uint64(2); s <= 64; s += 2 {
				seqs = append(seqs, s)
			}
			return seqs
		}
		return []uint64{1}
	})
	// 50 new lines of known authors (a second line of a one-line author,
	// or the first hole of a gapped one), 50 lines of new ones.
	extra := syncScaleLines(authors-50, authors, func(i int) []uint64 {
		if i < gapped {
			return []uint64{1}
		}
		return []uint64{2}
	})
	extra = append(extra, syncScaleLines(authors, authors+50, func(int) []uint64 { return []uint64{1} })...)
	signed := time.Since(start)
	syncScaleAppend(t, a.log, common)
	syncScaleAppend(t, a.log, extra)
	syncScaleAppend(t, b.log, common)
	stored := time.Since(start) - signed

	// A node derives its summaries at start: the first call walks the
	// whole origin index.
	start = time.Now()
	sums, err := b.log.Summaries()
	if err != nil {
		t.Fatal(err)
	}
	derive := time.Since(start)
	if len(sums) != authors {
		t.Fatalf("Bob's summaries: %d origins, want %d", len(sums), authors)
	}
	states, err := a.log.SyncState()
	if err != nil {
		t.Fatal(err)
	}
	oldBytes, oldLargest := mainSyncBytes(t, states)
	t.Logf("%d authors (%d with 32 holes), %d lines each side: signed in %s, stored in %s; summaries derived in %s",
		authors, gapped, len(common), signed.Round(time.Millisecond), stored.Round(time.Millisecond), derive.Round(time.Millisecond))
	t.Logf("previous protocol: a SYNC request is %d bytes (largest frame %d, limit %d), %d bytes per connection per interval (one each way)",
		oldBytes, oldLargest, wire.DefaultMaxFrame, 2*oldBytes)

	if err := b.Connect(context.Background(), a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	netTestWaitFor(t, 3*time.Minute, "Bob to hold Alice's 100 extra lines", func() bool {
		signed := make([]eventlog.Signed, len(extra))
		for i, e := range extra {
			signed[i] = e.(eventlog.Signed)
		}
		held, err := b.log.Holds(signed)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range held {
			if !h {
				return false
			}
		}
		return true
	})
	caughtUp := time.Since(start)
	var req0, ans0, rounds0 uint64
	netTestWaitFor(t, time.Minute, "both rounds to end", func() bool {
		var idle bool
		req0, ans0, rounds0, idle = syncCounters(a, b)
		return idle
	})
	t.Logf("catch-up of the difference: %s, %d request bytes, %d answer bytes, %d rounds", caughtUp.Round(time.Millisecond), req0, ans0, rounds0)
	// The counters follow the commit that made the lines visible.
	netTestWaitFor(t, time.Minute, "Bob's counters to take in the caught-up lines", func() bool {
		st := b.Stats()
		return st.CaughtUp-st.CaughtUpDuplicates >= 100
	})
	// A hole list cut at 32 ranges ends with a range to the origin's
	// highest seq, so each origin listed may bring one copy of a line
	// held already; no more.
	if st := b.Stats(); st.CaughtUp-st.CaughtUpDuplicates != 100 || st.CaughtUpDuplicates > leafOrigins*100 {
		t.Errorf("Bob stored %d caught-up lines for a difference of 100, and received %d copies", st.CaughtUp-st.CaughtUpDuplicates, st.CaughtUpDuplicates)
	}
	t.Logf("Bob stored %d caught-up lines, received %d copies", b.Stats().CaughtUp-b.Stats().CaughtUpDuplicates, b.Stats().CaughtUpDuplicates)

	// Steady state: nothing differs; each side still compares every
	// interval.
	var req1, ans1, rounds1 uint64
	netTestWaitFor(t, time.Minute, "six more rounds", func() bool {
		var idle bool
		req1, ans1, rounds1, idle = syncCounters(a, b)
		return idle && rounds1 >= rounds0+6
	})
	perRound := float64(req1-req0+ans1-ans0) / float64(rounds1-rounds0)
	t.Logf("steady state: %.0f bytes per round; %.0f bytes per connection per interval (a round each way), against %d before",
		perRound, 2*perRound, 2*oldBytes)
	// The comparison is a query and one answer of 16 fingerprints each
	// way: bytes, not megabytes, whatever the number of authors.
	if perRound > 4096 {
		t.Errorf("%.0f bytes per round when nothing differs", perRound)
	}
	for _, n := range []*netTestNode{a, b} {
		if n.logs.has("penalized peer", "") {
			t.Errorf("%s penalized an honest peer:\n%s", n.Name(), n.logs)
		}
	}
}

// TestANewcomerCatchesUpOnEveryAuthor has an empty node dial one that
// holds syncScaleAuthors authors (P2PCHAT_SYNC_AUTHORS=100000 for the
// contract's scale). The newcomer's requests bring authors it has never
// held, bounded by what the peer said it holds and by
// Config.CatchupAuthors: with the default, one request takes them all;
// with a bucket of a quarter of them, the requests that follow take the
// rest as the bucket refills. Either way no one is penalized.
func TestANewcomerCatchesUpOnEveryAuthor(t *testing.T) {
	authors := syncScaleAuthors(t)
	lines := syncScaleLines(0, authors, func(i int) []uint64 {
		if i%10 == 0 {
			return []uint64{1, 2, 3}
		}
		return []uint64{1}
	})
	for _, tc := range []struct {
		name           string
		catchupAuthors int
	}{
		{"default bucket", 0},
		{"a quarter of the authors per interval", authors / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tweak := func(cfg *Config) {
				cfg.SyncInterval = 500 * time.Millisecond
				cfg.CatchupAuthors = tc.catchupAuthors
			}
			a := netTestStart(t, "Alice", tweak)
			syncScaleAppend(t, a.log, lines)
			b := netTestStart(t, "Bob", tweak)
			start := time.Now()
			if err := b.Connect(context.Background(), a.Addr().String()); err != nil {
				t.Fatal(err)
			}
			netTestWaitFor(t, 5*time.Minute, "Bob to hold every line of Alice's", func() bool {
				st := b.Stats()
				return st.CaughtUp-st.CaughtUpDuplicates >= uint64(len(lines))
			})
			_, _, rounds, _ := syncCounters(a, b)
			t.Logf("%d authors, %d lines caught up in %s, %d rounds", authors, len(lines), time.Since(start).Round(time.Millisecond), rounds)
			sums, err := b.log.Summaries()
			if err != nil {
				t.Fatal(err)
			}
			if len(sums) != authors {
				t.Errorf("Bob holds %d authors, want %d", len(sums), authors)
			}
			for _, n := range []*netTestNode{a, b} {
				if n.logs.has("penalized peer", "") {
					t.Errorf("%s penalized an honest peer:\n%s", n.Name(), n.logs)
				}
			}
		})
	}
}
