package gossipbench

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/p2pchat/p2pchat/internal/workload"
)

// patience bounds each wait that should end quickly in a healthy run
// (the mesh forming, the warm-up line, the last line): far above what
// such a run needs, so only a hang fails it. Chain3 waits as long.
const patience = 5 * time.Minute

// quietSpell is how long C waits for another line, once A has published
// them all, before it counts the missing ones as lost. Lines cross
// loopback in well under a millisecond; as long as lines keep coming the
// wait goes on.
const quietSpell = 5 * time.Second

// topicName is the one topic of the benchmark.
const topicName = "chat"

// warmUp is the line that shows the path A - B - C works before the timer
// starts; it is not one of the counted lines, which all begin with '#'.
const warmUp = "warm-up"

// BenchmarkGossipsub pushes b.N lines into A of the chain A - B - C and
// measures the rate at which C receives them, as BenchmarkChain3 does for
// p2pchat; the package doc says what is the same and what is not.
func BenchmarkGossipsub(b *testing.B) {
	b.Run("lossless", func(b *testing.B) { benchChain(b, true) })
	b.Run("defaults", func(b *testing.B) { benchChain(b, false) })
}

func benchChain(b *testing.B, lossless bool) {
	// The routers and the readers of the subscriptions stop with ctx.
	// This first cleanup runs last, so that a set-up that fails half way
	// still stops them.
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	// A queue that holds every line of the run, and what else travels
	// beside them (subscriptions, grafts, the warm-up), cannot overflow.
	queue := 0
	if lossless {
		queue = b.N + 1024
	}
	a := startNode(ctx, b, "A", queue)
	bob := startNode(ctx, b, "B", queue)
	c := startNode(ctx, b, "C", queue)
	connect(ctx, b, a, bob)
	connect(ctx, b, c, bob)
	graph := connectionGraph(a, bob, c)
	if want := "A: B; B: A C; C: B"; graph != want {
		b.Fatalf("connections are %q, want the chain %q", graph, want)
	}

	// Cleanups run last first: this one, which stops the routers and
	// waits for the readers, runs before those of startNode close the
	// hosts.
	var readers sync.WaitGroup
	b.Cleanup(func() {
		cancel()
		readers.Wait()
	})
	seen := newTally(b.N)
	readers.Go(func() { seen.read(ctx, c.sub) })
	readers.Go(func() { discard(ctx, a.sub) })
	readers.Go(func() { discard(ctx, bob.sub) })

	waitFor(b, "the mesh A - B - C", func() bool {
		return a.mesh.holds(bob) && bob.mesh.holds(a, c) && c.mesh.holds(bob) &&
			slices.Contains(a.ps.ListPeers(topicName), bob.host.ID()) &&
			slices.Contains(c.ps.ListPeers(topicName), bob.host.ID())
	})
	if err := a.topic.Publish(ctx, []byte(warmUp)); err != nil {
		b.Fatal(err)
	}
	waitFor(b, "the warm-up line at C", func() bool { return seen.warm.Load() > 0 })

	lines := make([][]byte, b.N)
	for i := range lines {
		lines[i] = []byte(workload.Text(i))
	}

	b.ResetTimer()
	cpu, allocated := processCPU(b), totalAllocated()
	start := time.Now()
	for _, line := range lines {
		if err := a.topic.Publish(ctx, line); err != nil {
			b.Fatal(err)
		}
	}
	published := time.Since(start)
	cpuAtLast, allocatedAtLast := seen.waitAll(b)
	cpu, allocated = cpuAtLast-cpu, allocatedAtLast-allocated
	b.StopTimer()

	if after := connectionGraph(a, bob, c); after != graph {
		b.Fatalf("the chain changed during the run: connections were %q, are %q", graph, after)
	}
	received, last := seen.result()
	lost := b.N - received
	if lossless && lost > 0 {
		b.Fatalf("lost %d of %d lines with every queue sized for the whole run", lost, b.N)
	}
	if dups := seen.duplicates.Load(); dups > 0 {
		b.Errorf("C received %d lines twice", dups)
	}
	if foreign := seen.foreign.Load(); foreign > 0 {
		b.Errorf("C received %d lines that A did not publish", foreign)
	}
	if received > 0 {
		b.ReportMetric(float64(received)/last.Sub(start).Seconds(), "msgs/s")
	}
	// Publish signs the line and then checks its own signature, in the
	// caller's goroutine, before it hands the line on: one publisher cannot
	// go faster than that. This rate says how close the chain came to it.
	b.ReportMetric(float64(b.N)/published.Seconds(), "publish_msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu_µs/msg")
	b.ReportMetric(float64(allocated)/float64(b.N), "alloc_B/msg")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(100*float64(lost)/float64(b.N), "lost_%")
	// Where lines were dropped: A's and B's outbound queues, B's and C's
	// validation queues, C's subscription. What A's and B's own
	// subscribers miss is not a loss of the chain.
	var rpcs, validation int64
	for _, n := range []*node{a, bob, c} {
		rpcs += n.mesh.droppedRPCs.Load()
		validation += n.mesh.validationFull.Load()
	}
	b.ReportMetric(float64(rpcs), "drop_rpc")
	b.ReportMetric(float64(validation), "drop_validate")
	b.ReportMetric(float64(c.mesh.undeliverable.Load()), "drop_sub_C")
}

// node is one libp2p host of the chain with its gossipsub router, joined
// to the topic and subscribed to it.
type node struct {
	name  string
	host  host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	mesh  *tracer
}

// errorsOnly is gossipsub's log at level error and above. At its default
// level, info, it writes a line for every message a slow subscriber
// misses, and at warn one for every delivery its connection-manager tag
// could not count (the tag's queue of 128 overflows in the first
// milliseconds of a burst): thousands of lines whose writing would be
// measured as gossipsub's cost.
var errorsOnly = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// startNode starts a host on 127.0.0.1 with TCP, TLS and a new ed25519
// identity, and gossipsub on it, subscribed to the topic. queue sizes
// every queue of gossipsub's that a line passes through; 0 keeps the
// defaults. The host closes when the benchmark ends; gossipsub stops with
// ctx.
func startNode(ctx context.Context, b *testing.B, name string, queue int) *node {
	b.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := h.Close(); err != nil {
			b.Errorf("close host %s: %v", name, err)
		}
	})
	tr := newTracer(topicName)
	opts := []pubsub.Option{pubsub.WithRawTracer(tr), pubsub.WithLogger(errorsOnly)}
	var subOpts []pubsub.SubOpt
	if queue > 0 {
		opts = append(opts, pubsub.WithPeerOutboundQueueSize(queue), pubsub.WithValidateQueueSize(queue))
		subOpts = append(subOpts, pubsub.WithBufferSize(queue))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		b.Fatal(err)
	}
	topic, err := ps.Join(topicName)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := topic.Subscribe(subOpts...)
	if err != nil {
		b.Fatal(err)
	}
	return &node{name: name, host: h, ps: ps, topic: topic, sub: sub, mesh: tr}
}

// connect has from dial to, the only way hosts of the benchmark meet.
func connect(ctx context.Context, b *testing.B, from, to *node) {
	b.Helper()
	if err := from.host.Connect(ctx, peer.AddrInfo{ID: to.host.ID(), Addrs: to.host.Addrs()}); err != nil {
		b.Fatalf("%s dial %s: %v", from.name, to.name, err)
	}
}

// connectionGraph says, for each node, which of the others it is
// connected to, as "A: B; B: A C; C: B", so that two graphs compare as
// strings. A connection to a host outside the benchmark shows as "?".
func connectionGraph(nodes ...*node) string {
	names := make(map[peer.ID]string, len(nodes))
	for _, n := range nodes {
		names[n.host.ID()] = n.name
	}
	var parts []string
	for _, n := range nodes {
		var peers []string
		for _, p := range n.host.Network().Peers() {
			name, ok := names[p]
			if !ok {
				name = "?"
			}
			peers = append(peers, name)
		}
		slices.Sort(peers)
		parts = append(parts, n.name+": "+strings.Join(peers, " "))
	}
	return strings.Join(parts, "; ")
}

// waitFor polls cond every millisecond until it holds, as Chain3's
// benchWaitFor does.
func waitFor(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(patience)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("after %s still waiting for: %s", patience, what)
		}
		<-tick.C
	}
}

// discard reads a subscription until ctx ends, as a chat client shows
// every line; an unread subscription would make gossipsub drop and log.
func discard(ctx context.Context, sub *pubsub.Subscription) {
	defer sub.Cancel()
	for {
		if _, err := sub.Next(ctx); err != nil {
			return
		}
	}
}

// tally counts the distinct lines C receives, by the index that starts
// each workload line ("#17 ..."). Its reader goroutine alone writes got;
// the benchmark reads the atomics.
type tally struct {
	got        []bool
	distinct   atomic.Int64
	duplicates atomic.Int64
	foreign    atomic.Int64 // lines that were never published
	warm       atomic.Int64
	last       atomic.Int64 // UnixNano of the last new line
}

func newTally(n int) *tally { return &tally{got: make([]bool, n)} }

func (t *tally) read(ctx context.Context, sub *pubsub.Subscription) {
	defer sub.Cancel()
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if string(msg.Data) == warmUp {
			t.warm.Add(1)
			continue
		}
		i, ok := lineIndex(msg.Data)
		if !ok || i >= len(t.got) {
			t.foreign.Add(1)
			continue
		}
		if t.got[i] {
			t.duplicates.Add(1)
			continue
		}
		t.got[i] = true
		t.last.Store(time.Now().UnixNano())
		t.distinct.Add(1)
	}
}

// lineIndex is i of a line made by workload.Text(i).
func lineIndex(line []byte) (int, bool) {
	rest, ok := strings.CutPrefix(string(line), "#")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(num)
	return i, err == nil && i >= 0
}

// waitAll waits until C holds every line, or until no new line has
// arrived for quietSpell: then the missing lines are lost. It
// returns the process's CPU time and bytes allocated when it last saw a
// new line (within a millisecond of its arrival), so that the quiet spell
// of a lossy run is not counted as the cost of the lines.
func (t *tally) waitAll(b *testing.B) (time.Duration, uint64) {
	b.Helper()
	want := int64(len(t.got))
	cpu, allocated := processCPU(b), totalAllocated()
	since := time.Now()
	deadline := since.Add(patience)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for have := int64(0); ; {
		if n := t.distinct.Load(); n != have {
			have = n
			cpu, allocated = processCPU(b), totalAllocated()
		}
		if have >= want {
			return cpu, allocated
		}
		now := time.Now()
		if now.After(deadline) {
			b.Fatalf("after %s C holds %d of %d lines", patience, have, want)
		}
		if last := t.last.Load(); last > since.UnixNano() {
			since = time.Unix(0, last)
		}
		if now.Sub(since) > quietSpell {
			return cpu, allocated
		}
		<-tick.C
	}
}

// result is how many distinct lines C received and when the last of them
// arrived.
func (t *tally) result() (int, time.Time) {
	return int(t.distinct.Load()), time.Unix(0, t.last.Load())
}

// processCPU is the CPU time the process has used so far, every host of
// the benchmark together, as Chain3's benchCPU measures it.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// totalAllocated is the bytes the process has allocated on the heap so
// far, the figure of Chain3's benchAllocated (MemStats.TotalAlloc), read
// through runtime/metrics because ReadMemStats stops the world and waitAll
// reads it as often as every millisecond.
func totalAllocated() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// tracer follows one host's mesh for a topic, to know when the chain's
// mesh has formed, and counts what the host drops: outbound RPCs to a
// full peer queue, received messages to a full validation queue, and
// messages its own slow subscriber missed. gossipsub calls it from its
// event loop and, for SendRPCCompleted, from other goroutines.
type tracer struct {
	topic          string
	mu             sync.Mutex
	meshPeers      map[peer.ID]bool
	droppedRPCs    atomic.Int64
	validationFull atomic.Int64
	undeliverable  atomic.Int64
}

func newTracer(topic string) *tracer {
	return &tracer{topic: topic, meshPeers: make(map[peer.ID]bool)}
}

// holds reports whether the mesh is exactly the given nodes.
func (t *tracer) holds(nodes ...*node) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.meshPeers) != len(nodes) {
		return false
	}
	for _, n := range nodes {
		if !t.meshPeers[n.host.ID()] {
			return false
		}
	}
	return true
}

func (t *tracer) Graft(p peer.ID, topic string) {
	if topic != t.topic {
		return
	}
	t.mu.Lock()
	t.meshPeers[p] = true
	t.mu.Unlock()
}

func (t *tracer) Prune(p peer.ID, topic string) {
	if topic != t.topic {
		return
	}
	t.mu.Lock()
	delete(t.meshPeers, p)
	t.mu.Unlock()
}

func (t *tracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull {
		t.validationFull.Add(1)
	}
}

func (t *tracer) DropRPC(*pubsub.RPC, peer.ID)         { t.droppedRPCs.Add(1) }
func (t *tracer) UndeliverableMessage(*pubsub.Message) { t.undeliverable.Add(1) }

func (t *tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *tracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *tracer) Join(string)                                          {}
func (t *tracer) Leave(string)                                         {}
func (t *tracer) ValidateMessage(*pubsub.Message)                      {}
func (t *tracer) DeliverMessage(*pubsub.Message)                       {}
func (t *tracer) DuplicateMessage(*pubsub.Message)                     {}
func (t *tracer) ThrottlePeer(peer.ID)                                 {}
func (t *tracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *tracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
