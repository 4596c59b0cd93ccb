package peering

import (
	"slices"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// TestTheWorstTargetsGiveWayFirst: at the bound, hearsay that never
// connected gives way before a peer that did, the one that failed more
// first; a target being dialed is kept whatever it is worth.
func TestTheWorstTargetsGiveWayFirst(t *testing.T) {
	now := time.Now()
	targets := map[string]*target{}
	add := func(key string, failures int, lastGood time.Time, dialing bool) {
		targets[key] = &target{key: key, id: eventlog.NodeID{byte(len(targets) + 1)}, failures: failures, lastGood: lastGood, dialing: dialing}
	}
	add("peer", 0, now, false)
	add("peer long ago", 0, now.Add(-time.Hour), false)
	add("hearsay", 0, time.Time{}, false)
	add("hearsay failed twice", 2, time.Time{}, false)
	add("hearsay failed five times", 5, time.Time{}, false)
	add("hearsay being dialed", 9, time.Time{}, true)
	kept := func(t *target) bool { return t.dialing }
	for _, c := range []struct {
		k    int
		want []string
	}{
		{1, []string{"hearsay failed five times"}},
		{2, []string{"hearsay failed five times", "hearsay failed twice"}},
		{4, []string{"hearsay failed five times", "hearsay failed twice", "hearsay", "peer long ago"}},
		{9, []string{"hearsay failed five times", "hearsay failed twice", "hearsay", "peer long ago", "peer"}},
	} {
		var got []string
		for _, t := range targetsToEvict(targets, c.k, kept) {
			got = append(got, t.key)
		}
		slices.Sort(got)
		slices.Sort(c.want)
		if !slices.Equal(got, c.want) {
			t.Errorf("the %d worst: %q, want %q", c.k, got, c.want)
		}
	}
}

// TestNamesPastTheBoundKeepTheTargetsWithinIt: names learned past
// Config.MaxKnownPeers each become a target, dialed at once, and the
// targets stay within the bound; a peer that connected before stays.
func TestNamesPastTheBoundKeepTheTargetsWithinIt(t *testing.T) {
	n := dialerTestNode(t, func(cfg *Config) { cfg.MaxKnownPeers = 200 })
	known := eventlog.NodeID{0xff}
	n.targets[known.String()] = &target{key: known.String(), id: known, lastGood: time.Now()}
	for i := range 1000 {
		id := eventlog.NodeID{1, byte(i), byte(i >> 8)}
		n.mu.Lock()
		added := n.ensureTargetLocked(id, []string{"127.0.0.1:1"})
		count := len(n.targets)
		n.mu.Unlock()
		if !added || n.targets[id.String()] == nil {
			t.Fatalf("name %d past the bound was not made a target", i)
		}
		if count > n.cfg.MaxKnownPeers {
			t.Fatalf("%d targets after name %d, bound %d", count, i, n.cfg.MaxKnownPeers)
		}
	}
	if n.targets[known.String()] == nil {
		t.Error("the peer that connected before was forgotten for hearsay")
	}
}

// dialerTestNode is a node that is not run, for the dialer's own state.
func dialerTestNode(tb testing.TB, tweak func(*Config)) *Node {
	tb.Helper()
	st, err := store.Open(tb.TempDir(), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	key, err := st.Identity()
	if err != nil {
		tb.Fatal(err)
	}
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lg.Close() })
	cfg := DefaultConfig()
	cfg.Name, cfg.Key = "Alice", key
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := New(cfg, lg, benchDisplay{})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkLearnPastTheBound: names learned by a dialer whose 10,000
// targets are at their bound, as a flood of fake IDs makes them. Beside
// it, one walk over the targets, which each such name cost before walks
// forgot a batch (x_one_walk: the cost of a name in walks).
func BenchmarkLearnPastTheBound(b *testing.B) {
	n := dialerTestNode(b, nil)
	later := time.Now().Add(time.Hour)
	fill := func(from int) {
		for i := from; len(n.targets) < n.cfg.MaxKnownPeers; i++ {
			id := eventlog.NodeID{2, byte(i), byte(i >> 8), byte(i >> 16)}
			n.targets[id.String()] = &target{key: id.String(), id: id, failures: 1 + i%5, due: later}
		}
	}
	fill(0)
	start := time.Now()
	const walks = 50
	for range walks {
		targetsToEvict(n.targets, 1, func(*target) bool { return false })
	}
	walk := time.Since(start) / walks
	b.ResetTimer()
	i := 0
	for b.Loop() {
		id := eventlog.NodeID{3, byte(i), byte(i >> 8), byte(i >> 16)}
		n.mu.Lock()
		n.ensureTargetLocked(id, []string{"127.0.0.1:1"})
		n.mu.Unlock()
		i++
	}
	perName := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(walk.Microseconds()), "walk_µs")
	b.ReportMetric(float64(perName)/float64(walk), "x_one_walk")
}
