package peering

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/workload"
	"github.com/p2pchat/p2pchat/store"
)

// The network benchmarks run real nodes in one process: TLS over
// loopback, each node with its own bbolt file in a temporary directory and
// fsync on, as a user's node runs. Every figure is reported beside a
// baseline measured in the same run on the same disk, because on a shared
// machine the absolute numbers move from run to run while the ratios hold
// better. docs/BENCHMARKS.md has the figures and how to run them.

// benchPatience bounds each wait of a benchmark: far above what a healthy
// run needs, so only a hang fails it.
const benchPatience = 5 * time.Minute

// benchNode is a node of a benchmark with its store and log.
type benchNode struct {
	*Node
	st     *store.Store
	log    *eventlog.Log
	cancel context.CancelFunc
	done   chan error
}

// benchDisplay shows nothing; a benchmark counts in the log instead.
type benchDisplay struct{}

func (benchDisplay) ShowChat(time.Time, string, string)              {}
func (benchDisplay) ShowPrivate(time.Time, string, string)           {}
func (benchDisplay) ShowPrivateTo(time.Time, string, string, string) {}
func (benchDisplay) ShowSystem(string)                               {}

// benchStart starts a node on the data directory dir ("" for a new one),
// listening on 127.0.0.1. The chat and byte budgets are lifted so that the figures
// measure the machinery, not the flood policy (docs/BENCHMARKS.md says
// what the default budget allows). The node stops when the benchmark ends,
// or earlier through stop.
func benchStart(b *testing.B, dir, name string, display Display, tweak func(*Config)) *benchNode {
	b.Helper()
	return benchStartStore(b, dir, store.Options{}, name, display, tweak)
}

// benchStartStore is benchStart with the store opened with opts.
func benchStartStore(b *testing.B, dir string, opts store.Options, name string, display Display, tweak func(*Config)) *benchNode {
	b.Helper()
	if dir == "" {
		dir = b.TempDir()
	}
	if display == nil {
		display = benchDisplay{}
	}
	st, err := store.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	key, err := st.Identity()
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Name, cfg.Key, cfg.ListenHost = name, key, "127.0.0.1"
	cfg.ChatRate, cfg.ChatBurst = 1<<30, 1<<30
	cfg.ByteRate, cfg.ByteBurst = 1<<40, 1<<40
	if tweak != nil {
		tweak(&cfg)
	}
	node, err := New(cfg, lg, display)
	if err == nil {
		err = node.Listen()
	}
	if err != nil {
		lg.Close()
		st.Close()
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bn := &benchNode{Node: node, st: st, log: lg, cancel: cancel, done: make(chan error, 1)}
	go func() { bn.done <- node.Run(ctx) }()
	b.Cleanup(bn.stop)
	return bn
}

// stop ends the node and waits for every goroutine it started, then closes
// its log and store. It may be called more than once.
func (bn *benchNode) stop() {
	if bn.cancel == nil {
		return
	}
	bn.cancel()
	<-bn.done
	bn.log.Close()
	bn.st.Close()
	bn.cancel = nil
}

// benchPeers makes a tweak that has a node dial the given nodes at start
// and keep at most maxPeers connections (0: the default).
func benchPeers(maxPeers int, seeds ...*benchNode) func(*Config) {
	return func(cfg *Config) {
		cfg.MaxPeers = maxPeers
		for _, s := range seeds {
			cfg.Seeds = append(cfg.Seeds, s.Addr().String())
		}
	}
}

// holds is how many of origin's messages bn's log holds without a gap.
func (bn *benchNode) holds(b *testing.B, origin eventlog.NodeID) int {
	marks, err := bn.log.Watermarks()
	if err != nil {
		b.Fatal(err)
	}
	return int(marks[origin])
}

// connected reports whether bn is connected to exactly the given nodes.
func (bn *benchNode) connected(others ...*benchNode) bool {
	users := bn.Users()
	if len(users) != len(others) {
		return false
	}
	for _, o := range others {
		if !slices.ContainsFunc(users, func(u User) bool { return u.ID == o.ID() }) {
			return false
		}
	}
	return true
}

// benchWaitFor polls cond every millisecond until it holds. Polling reads
// only; its cost is part of what the benchmarks measure, and small.
func benchWaitFor(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(benchPatience)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("after %s still waiting for: %s", benchPatience, what)
		}
		<-tick.C
	}
}

// benchFsyncs writes 100 bytes and fsyncs, n times, in a file beside the
// benchmark's data, and returns how long each pair took: the disk's
// baseline, measured as eventlog's storage benchmarks measure it, before
// and after the timed part, so that a change of load on a shared disk
// during the run skews the ratio less.
func benchFsyncs(b *testing.B, n int) []time.Duration {
	b.Helper()
	ds, err := workload.Fsyncs(b.TempDir(), n)
	if err != nil {
		b.Fatal(err)
	}
	return ds
}

// benchAppends appends n lines one by one to a new event log with fsync
// on and returns how long each Append took.
func benchAppends(b *testing.B, n int) []time.Duration {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer lg.Close()
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		if _, err := lg.Append(context.Background(), eventlog.Chat{Name: "Alice", Text: workload.Text(i)}); err != nil {
			b.Fatal(err)
		}
		out[i] = time.Since(start)
	}
	return out
}

// benchPercentile returns the p-th percentile (0 < p <= 1) of ds, which
// it sorts.
func benchPercentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(float64(len(ds))*p+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// benchAllocated is the bytes the process has allocated so far, all
// nodes of a benchmark together.
func benchAllocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// benchCPU is the CPU time the process has used so far, all nodes of a
// benchmark together. Unlike wall time it hardly depends on what else the
// machine runs.
func benchCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchSay queues lines on bn, in order.
func benchSay(b *testing.B, bn *benchNode, lines []string) {
	b.Helper()
	ctx := context.Background()
	for _, line := range lines {
		if err := bn.Say(ctx, line); err != nil {
			b.Fatal(err)
		}
	}
}

func benchLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = workload.Text(i)
	}
	return out
}

// BenchmarkChain3 pushes b.N lines into A of the chain A - B - C and
// measures the rate at which they become durable at C, two hops and three
// fsynced logs away. The baseline is the disk's rate of single fsyncs: a
// node that stored each line on its own could not beat it even with one
// hop.
func BenchmarkChain3(b *testing.B) {
	fsyncs := benchFsyncs(b, 200)
	// MaxPeers keeps the chain a chain: A and C are full with their one
	// peer, so neither dials the other when PEERS names it.
	a := benchStart(b, "", "Alice", nil, benchPeers(1))
	bob := benchStart(b, "", "Bob", nil, benchPeers(2, a))
	benchWaitFor(b, "Bob connected to Alice", func() bool { return bob.connected(a) })
	c := benchStart(b, "", "Carol", nil, benchPeers(1, bob))
	benchWaitFor(b, "the chain Alice - Bob - Carol", func() bool {
		return a.connected(bob) && bob.connected(a, c) && c.connected(bob)
	})
	lines := benchLines(b.N)

	b.ResetTimer()
	cpu, allocated := benchCPU(b), benchAllocated()
	benchSay(b, a, lines)
	benchWaitFor(b, "Carol holding every line", func() bool { return c.holds(b, a.ID()) >= b.N })
	cpu, allocated = benchCPU(b)-cpu, benchAllocated()-allocated
	b.StopTimer()

	if !a.connected(bob) || !c.connected(bob) {
		b.Fatalf("the chain broke during the run: Alice has %d peers, Carol %d", len(a.Users()), len(c.Users()))
	}
	fsyncRate := workload.Rate(append(fsyncs, benchFsyncs(b, 200)...))
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(fsyncRate, "fsyncs/s")
	b.ReportMetric(rate/fsyncRate, "x_fsync")
	b.ReportMetric(micros(cpu)/float64(b.N), "cpu_µs/msg")
	b.ReportMetric(float64(allocated)/float64(b.N), "alloc_B/msg")
}

// benchSignal passes on the text of every chat line shown.
type benchSignal struct {
	benchDisplay
	chats chan string
}

func (d benchSignal) ShowChat(_ time.Time, _, text string) {
	select {
	case d.chats <- text:
	default: // nobody waits for it: not the line being timed
	}
}

// BenchmarkOneHopLatency times one line at a time from Say on A to the
// line shown on B. With fsync on, as a node runs, that includes a bbolt
// commit at A (before sending) and one at B (before showing), and each
// commit is two fdatasyncs. Beside it, measured before and after on the
// same disk: the median single write+fsync, and the median Append of one
// line to an event log, which is what the hop pays twice. With fsync off
// the same path shows what the software alone costs.
func BenchmarkOneHopLatency(b *testing.B) {
	for _, durable := range []bool{true, false} {
		name := "fsync=on"
		if !durable {
			name = "fsync=off"
		}
		b.Run(name, func(b *testing.B) {
			var fsyncs, appends []time.Duration
			baseline := func() {
				if durable {
					fsyncs = append(fsyncs, benchFsyncs(b, 100)...)
					appends = append(appends, benchAppends(b, 100)...)
				}
			}
			baseline()
			opts := store.Options{NoSync: !durable}
			shown := benchSignal{chats: make(chan string, 16)}
			a := benchStartStore(b, "", opts, "Alice", nil, nil)
			bob := benchStartStore(b, "", opts, "Bob", shown, benchPeers(0, a))
			benchWaitFor(b, "Bob connected to Alice", func() bool { return bob.connected(a) && a.connected(bob) })
			took := benchOneHop(b, a, shown)
			baseline()
			b.ReportMetric(micros(benchPercentile(took, 0.5)), "p50_µs")
			b.ReportMetric(micros(benchPercentile(took, 0.99)), "p99_µs")
			if durable {
				b.ReportMetric(micros(benchPercentile(fsyncs, 0.5)), "fsync_p50_µs")
				b.ReportMetric(micros(benchPercentile(appends, 0.5)), "append_p50_µs")
			}
		})
	}
}

// benchOneHop says b.N lines on a, one at a time, each once the one before
// was shown, and returns how long each took to be shown.
func benchOneHop(b *testing.B, a *benchNode, shown benchSignal) []time.Duration {
	lines := benchLines(b.N)
	took := make([]time.Duration, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i, line := range lines {
		start := time.Now()
		if err := a.Say(ctx, line); err != nil {
			b.Fatal(err)
		}
		for got := ""; got != line; {
			select {
			case got = <-shown.chats:
			case <-time.After(benchPatience):
				b.Fatalf("line %d not shown after %s", i, benchPatience)
			}
		}
		took[i] = time.Since(start)
	}
	b.StopTimer()
	return took
}

// catchUpLines is the size of the log a newcomer catches up on.
const catchUpLines = 100_000

// BenchmarkCatchUp100k has an empty node B connect to a node A whose log
// holds 100k lines of A's own, and measures the rate at which B stores
// them all. Beside it: the live rate over one hop, measured on a fresh
// pair in the same run, and the disk's fsync rate.
func BenchmarkCatchUp100k(b *testing.B) {
	// The fixture is built once, in the parent's directory, which outlives
	// every round of the sub-benchmark.
	fixture := filepath.Join(b.TempDir(), "alice")
	start := time.Now()
	if err := workload.BuildOwnLog(fixture, "Alice", catchUpLines); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a log of %d lines in %v", catchUpLines, time.Since(start).Round(time.Millisecond))

	b.Run("empty_peer", func(b *testing.B) {
		fsyncs := benchFsyncs(b, 200)
		live := benchLiveRate(b, 5000)
		single := benchSingleVerifyRate(b, 2000)
		// Setting up and tearing down nodes is not what is measured; Bob's
		// start is, as a newcomer's catch-up begins with it.
		var cpu time.Duration
		var answered uint64 // bytes of Alice's answers, SYNCED included
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			dir := benchCopyStore(b, fixture)
			a := benchStart(b, dir, "Alice", nil, nil)
			b.StartTimer()
			cpu -= benchCPU(b)
			bob := benchStart(b, "", "Bob", nil, benchPeers(0, a))
			benchWaitFor(b, "Bob holding all of Alice's lines", func() bool { return bob.holds(b, a.ID()) >= catchUpLines })
			cpu += benchCPU(b)
			b.StopTimer()
			// What the answers sent, divided by the lines caught up: the wire's
			// cost of a line.
			answered += catchupSum(a.Node, func(cu *catchup) *atomic.Uint64 { return &cu.answerBytes })
			bob.stop()
			a.stop()
		}
		fsyncRate := workload.Rate(append(fsyncs, benchFsyncs(b, 200)...))
		single = (single + benchSingleVerifyRate(b, 2000)) / 2
		msgs := float64(b.N * catchUpLines)
		rate := msgs / b.Elapsed().Seconds()
		b.ReportMetric(micros(cpu)/msgs, "cpu_µs/msg")
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(live, "live_msgs/s")
		b.ReportMetric(rate/live, "x_live")
		b.ReportMetric(rate/fsyncRate, "x_fsync")
		b.ReportMetric(single, "single_verify_msgs/s")
		b.ReportMetric(rate/single, "x_single_verify")
		b.ReportMetric(float64(answered)/msgs, "answer_B/msg")
	})
}

// catchupSum adds up one counter of the catch-up of every connection of n.
func catchupSum(n *Node, counter func(*catchup) *atomic.Uint64) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var sum uint64
	for _, c := range n.conns {
		sum += counter(c.cu).Load()
	}
	return sum
}

// benchSingleVerifyRate is how many lines per second crypto/ed25519
// verifies one by one on one core: the rate a catch-up that checked each
// line's signature on its own could not beat on that core. Each message
// is the size of what a chat line's signature covers (a tag, origin, seq,
// time, name and text), so the check costs what a line's does.
func benchSingleVerifyRate(b *testing.B, n int) float64 {
	b.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	msgs, sigs := make([][]byte, n), make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "p2pchat/chat/1\x00%s%016x%016xAlice%s", pub, i+1, i, workload.Text(i))
		sigs[i] = ed25519.Sign(key, msgs[i])
	}
	start := time.Now()
	for i := range msgs {
		if !ed25519.Verify(pub, msgs[i], sigs[i]) {
			b.Fatal("a good signature refused")
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// benchLiveRate measures how fast n lines said on one node become durable
// on a connected second one.
func benchLiveRate(b *testing.B, n int) float64 {
	b.Helper()
	a := benchStart(b, "", "Alice", nil, nil)
	bob := benchStart(b, "", "Bob", nil, benchPeers(0, a))
	defer a.stop()
	defer bob.stop()
	benchWaitFor(b, "Bob connected to Alice", func() bool { return bob.connected(a) && a.connected(bob) })
	lines := benchLines(n)
	start := time.Now()
	benchSay(b, a, lines)
	benchWaitFor(b, "Bob holding every live line", func() bool { return bob.holds(b, a.ID()) >= n })
	return float64(n) / time.Since(start).Seconds()
}

// benchCopyStore copies the database of the data directory from into a
// new one and syncs it, so that no round inherits another's changes and
// the first commit of the round does not pay for writing the copy out.
func benchCopyStore(b *testing.B, from string) string {
	b.Helper()
	dir := b.TempDir()
	src, err := os.Open(filepath.Join(from, store.FileName))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, store.FileName), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Sync(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkDialPass measures one pass of the dial loop over its targets,
// every one backed off (the state after a flood of names that lead
// nowhere): 10,000 targets against a baseline of 100 in the same run. The
// pass holds the node's lock; minDialPass bounds how often it runs.
func BenchmarkDialPass(b *testing.B) {
	for _, targets := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("targets=%d", targets), func(b *testing.B) {
			n := dialerTestNode(b, nil)
			later := time.Now().Add(time.Hour)
			for i := range targets {
				var id eventlog.NodeID
				id[0], id[1], id[2] = byte(i), byte(i>>8), 1
				n.targets[id.String()] = &target{key: id.String(), id: id, addrs: []string{fmt.Sprintf("127.0.0.1:%d", 1+i%2)}, failures: 3, due: later}
			}
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				n.dialDue(ctx)
			}
		})
	}
}
