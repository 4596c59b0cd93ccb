package peering

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/store"
	"github.com/rs/zerolog"
)

// The simulation runs many real nodes in one process: real TLS over
// loopback, real bbolt files (without fsync, to spare the disk), short
// redial and sync timers. It joins them through a few seeds, stops and
// restarts some on their data directory and port while the others keep
// talking, and measures delivery, duplicates per line, connections per
// node, hops, catch-up after a restart and what each node's log grows by.
// docs/SCALING.md holds the figures and what they mean.

// The environment can make the simulation larger than its default, which
// is sized for every test run, and repeat the draw of who restarts.
const (
	simNodesEnv    = "P2PCHAT_SIM_NODES"
	simMaxPeersEnv = "P2PCHAT_SIM_MAX_PEERS"
	simSeedEnv     = "P2PCHAT_SIM_SEED"
)

// simPatience bounds each wait of the simulation: far above what a healthy
// network needs, for a machine busy with other tests.
const simPatience = 60 * time.Second

// simParams shapes one simulation.
type simParams struct {
	nodes    int
	seeds    int // nodes 0..seeds-1; every other node joins through them
	maxPeers int
	before   int // lines each node says once the network has formed
	churned  int // nodes stopped and restarted
	seed     uint64
}

// simParamsFromEnv is the CI size unless the environment asks for more.
func simParamsFromEnv(t *testing.T) simParams {
	p := simParams{nodes: 20, seeds: 3, maxPeers: 6, before: 2, seed: uint64(time.Now().UnixNano())}
	envInt := func(name string, v *int) {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", name, s)
			}
			*v = n
		}
	}
	envInt(simNodesEnv, &p.nodes)
	envInt(simMaxPeersEnv, &p.maxPeers)
	if s := os.Getenv(simSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", simSeedEnv, s, err)
		}
		p.seed = v
	}
	p.seeds = min(p.seeds, p.nodes)
	p.churned = max(1, p.nodes/4)
	return p
}

// simNode is one node of the simulation. It can be stopped and started
// again on the same data directory and port.
type simNode struct {
	idx      int
	name     string
	dir      string
	port     int
	seeds    []string
	maxPeers int
	id       eventlog.NodeID

	// Set while the node runs; guarded by sim.mu for the sampler.
	st      *store.Store
	log     *eventlog.Log
	node    *Node
	cancel  context.CancelFunc
	done    chan error
	logs    *netTestLogs
	display *simDisplay

	past       Stats  // counters of the runs before this one
	shown      int    // chat lines shown by the runs before this one
	sent       uint64 // lines this node said: its origin seqs 1..sent
	restartSeq uint64 // last local seq before the latest restart
}

// simDisplay counts the chat lines a node shows.
type simDisplay struct{ chats atomic.Int64 }

func (d *simDisplay) ShowChat(time.Time, string, string)              { d.chats.Add(1) }
func (d *simDisplay) ShowPrivate(time.Time, string, string)           {}
func (d *simDisplay) ShowPrivateTo(time.Time, string, string, string) {}
func (d *simDisplay) ShowSystem(string)                               {}

// sim is a set of nodes and a sampler that watches their degree.
type sim struct {
	t     *testing.T
	p     simParams
	rnd   *rand.Rand
	nodes []*simNode

	mu           sync.Mutex // guards simNode.node against the sampler
	maxDegree    int        // highest connection count any node had
	overMaxPeers []string   // samples where a node had more than MaxPeers

	stopSampler chan struct{}
	samplerDone chan struct{}
}

// newSim prepares p.nodes nodes and starts them all: the first through
// nothing (or the seeds before it), the rest through the seeds. Every node
// still running stops when the test ends.
func newSim(t *testing.T, p simParams) *sim {
	s := &sim{
		t:           t,
		p:           p,
		rnd:         rand.New(rand.NewPCG(p.seed, p.seed^0x9e3779b97f4a7c15)),
		stopSampler: make(chan struct{}),
		samplerDone: make(chan struct{}),
	}
	t.Cleanup(func() {
		close(s.stopSampler)
		<-s.samplerDone
		for _, sn := range s.nodes {
			if sn.node != nil {
				s.stop(sn)
			}
		}
	})
	go s.sample()
	base := t.TempDir()
	for i := range p.nodes {
		sn := &simNode{
			idx:      i,
			name:     fmt.Sprintf("n%03d", i),
			dir:      filepath.Join(base, fmt.Sprintf("n%03d", i)),
			maxPeers: p.maxPeers,
		}
		for j := range min(i, p.seeds) {
			sn.seeds = append(sn.seeds, s.nodes[j].addr())
		}
		s.mu.Lock()
		s.nodes = append(s.nodes, sn)
		s.mu.Unlock()
		s.start(sn)
	}
	return s
}

func (sn *simNode) addr() string { return "127.0.0.1:" + strconv.Itoa(sn.port) }

// start opens the node's store and log and runs it, on the port it had
// before if it ran before.
func (s *sim) start(sn *simNode) {
	t := s.t
	t.Helper()
	st, err := store.Open(sn.dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("%s: open store: %v", sn.name, err)
	}
	key, err := st.Identity()
	if err != nil {
		st.Close()
		t.Fatalf("%s: identity: %v", sn.name, err)
	}
	lg, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		st.Close()
		t.Fatalf("%s: open log: %v", sn.name, err)
	}
	last, err := lg.LastSeq()
	if err != nil {
		lg.Close()
		st.Close()
		t.Fatalf("%s: last seq: %v", sn.name, err)
	}
	logs := &netTestLogs{}
	display := &simDisplay{}
	cfg := DefaultConfig()
	cfg.Name, cfg.Key, cfg.ListenHost, cfg.Port = sn.name, key, "127.0.0.1", sn.port
	cfg.Seeds, cfg.MaxPeers = sn.seeds, sn.maxPeers
	cfg.Backoff = Backoff{Base: 50 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	cfg.SyncInterval = time.Second
	cfg.Logger = zerolog.New(logs).Level(zerolog.InfoLevel).With().Timestamp().Str("node", sn.name).Logger()
	node, err := New(cfg, lg, display)
	if err == nil {
		err = node.Listen()
		// Between a stop and the restart another process may have held
		// the port for a moment (as the source port of a connection).
		for deadline := time.Now().Add(10 * time.Second); err != nil && sn.port != 0 && time.Now().Before(deadline); {
			<-time.After(50 * time.Millisecond)
			err = node.Listen()
		}
	}
	if err != nil {
		lg.Close()
		st.Close()
		t.Fatalf("%s: start: %v", sn.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()

	s.mu.Lock()
	sn.st, sn.log, sn.node, sn.cancel, sn.done = st, lg, node, cancel, done
	sn.logs, sn.display = logs, display
	sn.port, sn.id = node.Port(), node.ID()
	sn.restartSeq = last
	s.mu.Unlock()
}

// stop ends the node's Run, waits for it, and closes its log and store,
// keeping its counters.
func (s *sim) stop(sn *simNode) {
	s.t.Helper()
	sn.cancel()
	if err := <-sn.done; err != nil {
		s.t.Errorf("%s: run: %v", sn.name, err)
	}
	s.mu.Lock()
	node := sn.node
	sn.node = nil
	s.mu.Unlock()
	st := node.Stats()
	sn.past.Received += st.Received
	sn.past.Duplicates += st.Duplicates
	sn.past.CaughtUp += st.CaughtUp
	sn.past.CaughtUpDuplicates += st.CaughtUpDuplicates
	sn.past.Relayed += st.Relayed
	sn.past.Sent += st.Sent
	sn.shown += int(sn.display.chats.Load())
	sn.log.Close()
	sn.st.Close()
}

// stats is the node's counters over all its runs.
func (sn *simNode) stats() Stats {
	st := sn.past
	if sn.node != nil {
		now := sn.node.Stats()
		st.Received += now.Received
		st.Duplicates += now.Duplicates
		st.CaughtUp += now.CaughtUp
		st.CaughtUpDuplicates += now.CaughtUpDuplicates
		st.Relayed += now.Relayed
		st.Sent += now.Sent
	}
	return st
}

// sample watches every running node's connection count until the test
// ends: the cap must hold at every moment, not only at the end.
func (s *sim) sample() {
	defer close(s.samplerDone)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stopSampler:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		for _, sn := range s.nodes {
			if sn.node == nil {
				continue
			}
			d := len(sn.node.Users())
			s.maxDegree = max(s.maxDegree, d)
			if d > sn.maxPeers && len(s.overMaxPeers) < 20 {
				s.overMaxPeers = append(s.overMaxPeers, fmt.Sprintf("%s had %d connections", sn.name, d))
			}
		}
		s.mu.Unlock()
	}
}

// say has the node say a line and counts it.
func (s *sim) say(sn *simNode, text string) {
	s.t.Helper()
	if err := sn.node.Say(context.Background(), text); err != nil {
		s.t.Fatalf("%s says %q: %v", sn.name, text, err)
	}
	sn.sent++
}

// simGraph is the connection graph of the running nodes: an edge where
// either side lists the other as connected.
type simGraph struct {
	adj     [][]int // undirected
	degree  []int   // connections each node itself lists
	oneWay  int     // connections only one side lists (still forming or ending)
	running []bool
}

func (s *sim) graph() simGraph {
	byID := map[eventlog.NodeID]int{}
	for i, sn := range s.nodes {
		byID[sn.id] = i
	}
	g := simGraph{adj: make([][]int, len(s.nodes)), degree: make([]int, len(s.nodes)), running: make([]bool, len(s.nodes))}
	lists := make([][]int, len(s.nodes))
	for i, sn := range s.nodes {
		if sn.node == nil {
			continue
		}
		g.running[i] = true
		for _, u := range sn.node.Users() {
			if j, ok := byID[u.ID]; ok {
				lists[i] = append(lists[i], j)
			}
		}
		g.degree[i] = len(lists[i])
	}
	for i, list := range lists {
		for _, j := range list {
			if !slices.Contains(lists[j], i) {
				g.oneWay++
			}
			if !slices.Contains(g.adj[i], j) {
				g.adj[i] = append(g.adj[i], j)
			}
			if !slices.Contains(g.adj[j], i) {
				g.adj[j] = append(g.adj[j], i)
			}
		}
	}
	return g
}

// distances is the hop count from src to every node, -1 where unreachable.
func (g simGraph) distances(src int) []int {
	dist := make([]int, len(g.adj))
	for i := range dist {
		dist[i] = -1
	}
	dist[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range g.adj[i] {
			if dist[j] < 0 && g.running[j] {
				dist[j] = dist[i] + 1
				queue = append(queue, j)
			}
		}
	}
	return dist
}

// connected reports whether every running node reaches every other.
func (g simGraph) connected() bool {
	src := slices.Index(g.running, true)
	if src < 0 {
		return true
	}
	dist := g.distances(src)
	for i, r := range g.running {
		if r && dist[i] < 0 {
			return false
		}
	}
	return true
}

// components counts the connected parts among the running nodes.
func (g simGraph) components() int {
	seen := make([]bool, len(g.adj))
	count := 0
	for i, r := range g.running {
		if !r || seen[i] {
			continue
		}
		count++
		for j, d := range g.distances(i) {
			if d >= 0 {
				seen[j] = true
			}
		}
	}
	return count
}

// hops is the mean and the longest shortest path between running nodes:
// the hops a flooded line takes to arrive, if each hop costs the same.
func (g simGraph) hops() (mean float64, diameter int) {
	sum, pairs := 0, 0
	for i, r := range g.running {
		if !r {
			continue
		}
		for j, d := range g.distances(i) {
			if j != i && d > 0 {
				sum += d
				pairs++
				diameter = max(diameter, d)
			}
		}
	}
	if pairs > 0 {
		mean = float64(sum) / float64(pairs)
	}
	return mean, diameter
}

// degrees is the mean and the largest connection count of running nodes,
// as each lists its own.
func (g simGraph) degrees() (mean float64, most int) {
	sum, count := 0, 0
	for i, r := range g.running {
		if r {
			sum += g.degree[i]
			count++
			most = max(most, g.degree[i])
		}
	}
	if count > 0 {
		mean = float64(sum) / float64(count)
	}
	return mean, most
}

// waitConnected waits until the running nodes form one connected network.
func (s *sim) waitConnected(what string) {
	s.t.Helper()
	deadline := time.Now().Add(simPatience)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		g := s.graph()
		if g.connected() {
			return
		}
		if time.Now().After(deadline) {
			s.dumpLogs(3)
			s.t.Fatalf("after %v the network is still in %d parts (%s)", simPatience, g.components(), what)
		}
		<-tick.C
	}
}

// delivery is the share of (node, line) pairs where the node's log holds
// the line: 1.0 once every node has every line. short counts, per origin
// whose lines some node lacks, how many nodes lack some.
func (s *sim) delivery() (ratio float64, short map[*simNode]int) {
	s.t.Helper()
	var want, have uint64
	short = map[*simNode]int{}
	for _, sn := range s.nodes {
		marks, err := sn.log.Watermarks()
		if err != nil {
			s.t.Fatalf("%s: watermarks: %v", sn.name, err)
		}
		for _, o := range s.nodes {
			got := min(marks[o.id], o.sent)
			want += o.sent
			have += got
			if got < o.sent {
				short[o]++
			}
		}
	}
	if want == 0 {
		return 1, short
	}
	return float64(have) / float64(want), short
}

// waitDelivered waits until every node's log holds every line said, and
// returns the ratio reached. If that takes too long, it tells whose lines
// are missing and how their origins are connected.
func (s *sim) waitDelivered() float64 {
	s.t.Helper()
	deadline := time.Now().Add(simPatience)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ratio, short := s.delivery()
		if ratio == 1 {
			return ratio
		}
		if time.Now().After(deadline) {
			s.t.Errorf("after %v delivery is %.4f; %d parts", simPatience, ratio, s.graph().components())
			shown := 0
			for o, nodes := range short {
				if shown++; shown > 3 {
					break
				}
				s.t.Errorf("lines of %s (%d said) are missing at %d nodes; %s", o.name, o.sent, nodes, s.describe(o))
				s.dumpLog(o)
			}
			return ratio
		}
		<-tick.C
	}
}

// describe tells whom the node lists as connected and whether they list
// it back.
func (s *sim) describe(sn *simNode) string {
	if sn.node == nil {
		return "not running"
	}
	byID := map[eventlog.NodeID]*simNode{}
	for _, o := range s.nodes {
		byID[o.id] = o
	}
	var parts []string
	for _, u := range sn.node.Users() {
		o := byID[u.ID]
		back := o != nil && o.node != nil && slices.ContainsFunc(o.node.Users(), func(v User) bool { return v.ID == sn.id })
		parts = append(parts, fmt.Sprintf("%s (lists it back: %v)", u.Name, back))
	}
	return fmt.Sprintf("connected to %d: %s", len(parts), strings.Join(parts, ", "))
}

// dumpLogs shows the end of the log of the first few nodes.
func (s *sim) dumpLogs(nodes int) {
	for _, sn := range s.nodes[:min(nodes, len(s.nodes))] {
		s.dumpLog(sn)
	}
}

// dumpLog shows the end of a node's log, for a failed run.
func (s *sim) dumpLog(sn *simNode) {
	if sn.logs == nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(sn.logs.String()), "\n")
	lines = lines[max(0, len(lines)-60):]
	s.t.Logf("last log lines of %s:\n%s", sn.name, strings.Join(lines, "\n"))
}

// logFigures is what each node's log holds at the end.
type logFigures struct {
	events   map[eventlog.Type]int // summed over nodes
	maxBytes int64                 // largest database file
	sumBytes int64
	// Of the churned nodes, the events written after their restart.
	restartEvents map[eventlog.Type]int
	restarted     int
}

func (s *sim) logFigures(churned map[int]bool) logFigures {
	s.t.Helper()
	f := logFigures{events: map[eventlog.Type]int{}, restartEvents: map[eventlog.Type]int{}}
	for _, sn := range s.nodes {
		err := sn.log.Scan(context.Background(), 1, func(e eventlog.Event) error {
			f.events[e.Body.Type()]++
			if churned[sn.idx] && e.Seq > sn.restartSeq {
				f.restartEvents[e.Body.Type()]++
			}
			return nil
		})
		if err != nil {
			s.t.Fatalf("%s: scan: %v", sn.name, err)
		}
		fi, err := os.Stat(sn.st.Path())
		if err != nil {
			s.t.Fatal(err)
		}
		f.sumBytes += fi.Size()
		f.maxBytes = max(f.maxBytes, fi.Size())
		if churned[sn.idx] {
			f.restarted++
		}
	}
	return f
}

func TestSimulatedNetworkDeliversEveryLineThroughChurnWithinMaxPeers(t *testing.T) {
	p := simParamsFromEnv(t)
	t.Logf("simulation: %d nodes, %d seeds, max peers %d, %d churned, %s=%d", p.nodes, p.seeds, p.maxPeers, p.churned, simSeedEnv, p.seed)
	began := time.Now()
	s := newSim(t, p)
	s.waitConnected("after start")
	formed := time.Since(began)
	g := s.graph()
	meanDeg, maxDeg := g.degrees()
	meanHops, diameter := g.hops()
	t.Logf("formed in %v: degree mean %.2f max %d; hops mean %.2f, diameter %d", formed.Round(time.Millisecond), meanDeg, maxDeg, meanHops, diameter)

	// Steady state: everyone talks.
	for r := range p.before {
		for _, sn := range s.nodes {
			s.say(sn, fmt.Sprintf("%s steady %d", sn.name, r))
		}
	}
	s.waitDelivered()
	steadyDone := time.Now()
	steadyDeg, _ := s.graph().degrees()
	var steadyDup, steadyRecv uint64
	for _, sn := range s.nodes {
		st := sn.stats()
		steadyDup += st.Duplicates
		steadyRecv += st.Received
	}
	steadyLines := uint64(p.nodes * p.before)

	// Churn: stop some nodes (seeds included, if the draw says so), let the
	// others talk meanwhile, restart them on the same directory and port,
	// and talk again while they reconnect.
	churned := map[int]bool{}
	var victims []*simNode
	for _, i := range s.rnd.Perm(p.nodes)[:p.churned] {
		churned[i] = true
		victims = append(victims, s.nodes[i])
	}
	for _, v := range victims {
		s.stop(v)
	}
	for _, sn := range s.nodes {
		if !churned[sn.idx] {
			s.say(sn, sn.name+" while some are away")
		}
	}
	restartAt := time.Now()
	for _, v := range victims {
		s.start(v)
	}
	for _, sn := range s.nodes {
		s.say(sn, sn.name+" after the restarts")
	}
	ratio := s.waitDelivered()
	settled := time.Since(restartAt)
	s.waitConnected("after churn")

	// Figures.
	g = s.graph()
	meanDeg, maxDeg = g.degrees()
	meanHops, diameter = g.hops()
	var total Stats
	lines := 0
	for _, sn := range s.nodes {
		lines += int(sn.sent)
	}
	for _, sn := range s.nodes {
		st := sn.stats()
		total.Received += st.Received
		total.Duplicates += st.Duplicates
		total.CaughtUp += st.CaughtUp
		total.CaughtUpDuplicates += st.CaughtUpDuplicates
		total.Relayed += st.Relayed
		total.Sent += st.Sent
		shown := sn.shown + int(sn.display.chats.Load())
		if shown > lines {
			t.Errorf("%s showed %d chat lines of %d said: some twice", sn.name, shown, lines)
		}
	}
	lf := s.logFigures(churned)
	perNode := func(v int) float64 { return float64(v) / float64(p.nodes) }
	perRestart := func(v int) float64 { return float64(v) / float64(max(1, lf.restarted)) }
	s.mu.Lock()
	maxSampled, over := s.maxDegree, s.overMaxPeers
	s.mu.Unlock()
	steadyDupPerNodeLine := float64(steadyDup) / float64(steadyLines) / float64(p.nodes)
	dupPerNodeLine := float64(total.Duplicates) / float64(lines) / float64(p.nodes)

	t.Logf("figures (%d nodes, max peers %d, %d lines, %d churned):", p.nodes, p.maxPeers, lines, p.churned)
	t.Logf("  delivery %.4f; settled %v after the restarts; steady lines delivered in %v", ratio, settled.Round(time.Millisecond), steadyDone.Sub(began.Add(formed)).Round(time.Millisecond))
	t.Logf("  connections per node: mean %.2f, max %d at the end (%d listed by one side only), max %d sampled during the run", meanDeg, maxDeg, g.oneWay, maxSampled)
	t.Logf("  hops: mean %.2f, diameter %d", meanHops, diameter)
	t.Logf("  steady state: %d live receptions, %d duplicates = %.2f per line per node (mean degree %.2f), %.1f per line over the network",
		steadyRecv, steadyDup, steadyDupPerNodeLine, steadyDeg, float64(steadyDup)/float64(steadyLines))
	t.Logf("  whole run: %d live receptions, %d duplicates = %.2f per line per node; %d caught up (%d duplicates); %d relay frames queued, %d own",
		total.Received, total.Duplicates, dupPerNodeLine, total.CaughtUp, total.CaughtUpDuplicates, total.Relayed, total.Sent)
	t.Logf("  log per node: %.1f events (JOIN %.1f, PEERS %.1f, CONNECT %.1f, DISCONNECT %.1f, DIAL_FAILED %.1f, CHAT %.1f); database %.0f KiB mean, %d KiB max",
		perNode(sumEvents(lf.events)), perNode(lf.events[eventlog.TypeJoin]), perNode(lf.events[eventlog.TypePeers]),
		perNode(lf.events[eventlog.TypeConnect]), perNode(lf.events[eventlog.TypeDisconnect]),
		perNode(lf.events[eventlog.TypeDialFailed]), perNode(lf.events[eventlog.TypeChat]),
		float64(lf.sumBytes)/float64(p.nodes)/1024, lf.maxBytes/1024)
	t.Logf("  per restart: %.1f events (CONNECT %.1f, DISCONNECT %.1f, DIAL_FAILED %.1f, PEERS %.1f, CHAT caught up or live %.1f)",
		perRestart(sumEvents(lf.restartEvents)), perRestart(lf.restartEvents[eventlog.TypeConnect]),
		perRestart(lf.restartEvents[eventlog.TypeDisconnect]), perRestart(lf.restartEvents[eventlog.TypeDialFailed]),
		perRestart(lf.restartEvents[eventlog.TypePeers]), perRestart(lf.restartEvents[eventlog.TypeChat]))
	var restartCaught, restartCaughtDup uint64
	for _, v := range victims {
		st := v.node.Stats() // since the restart
		restartCaught += st.CaughtUp
		restartCaughtDup += st.CaughtUpDuplicates
	}
	t.Logf("  per restart: %.1f caught up, %.1f of them duplicates", perRestart(int(restartCaught)), perRestart(int(restartCaughtDup)))
	wf := s.wireFigures()
	t.Logf("  PEERS frame: %.1f entries, %.0f bytes (%.0f per entry); SYNC request: %.1f origins, %.0f bytes in %.1f frames",
		wf.peersEntries, wf.peersBytes, wf.peersBytes/max(1, wf.peersEntries), wf.syncOrigins, wf.syncBytes, wf.syncFrames)

	if ratio != 1 {
		t.Errorf("delivery %.4f, want 1.0", ratio)
	}
	if len(over) > 0 {
		t.Errorf("connections above max peers %d: %s", p.maxPeers, strings.Join(over, "; "))
	}
	if maxDeg > p.maxPeers {
		t.Errorf("a node ends with %d connections, above max peers %d", maxDeg, p.maxPeers)
	}
	// Flooding's floor is degree - 2 copies per line at each node (each
	// relays once, to all but the sender); above the degree, something
	// relays twice.
	if steadyDupPerNodeLine > steadyDeg {
		t.Errorf("%.2f duplicates per line per node in steady state, above the mean degree %.2f", steadyDupPerNodeLine, steadyDeg)
	}
}

// wireFigures is the mean size of the gossip a node sends on every
// connection: its PEERS frame and its SYNC request.
type wireFigures struct {
	peersEntries, peersBytes           float64
	syncOrigins, syncBytes, syncFrames float64
}

func (s *sim) wireFigures() wireFigures {
	s.t.Helper()
	var f wireFigures
	for _, sn := range s.nodes {
		frame, err := sn.node.peersFrame()
		if err != nil {
			s.t.Fatal(err)
		}
		var msg wire.PeersMsg
		payload := strings.TrimSuffix(strings.TrimPrefix(string(frame), wire.FramePeers+"|"), "\n")
		if err := json.Unmarshal([]byte(payload), &msg); err != nil {
			s.t.Fatalf("%s: PEERS frame: %v", sn.name, err)
		}
		f.peersEntries += float64(len(msg.Peers))
		f.peersBytes += float64(len(frame))
		states, err := sn.log.SyncState()
		if err != nil {
			s.t.Fatal(err)
		}
		frames, _, err := syncFrames(states, wire.DefaultMaxFrame)
		if err != nil {
			s.t.Fatal(err)
		}
		f.syncOrigins += float64(len(states))
		f.syncFrames += float64(len(frames))
		for _, fr := range frames {
			f.syncBytes += float64(len(fr))
		}
	}
	n := float64(len(s.nodes))
	f.peersEntries /= n
	f.peersBytes /= n
	f.syncOrigins /= n
	f.syncBytes /= n
	f.syncFrames /= n
	return f
}

func sumEvents(m map[eventlog.Type]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestStatsCountTheDuplicatesOfALineFloodedThroughATriangle(t *testing.T) {
	// Carol joins through Alice once Bob is connected to her, and dials
	// Bob as Alice's PEERS names him. Bob, who hears of Carol at the same
	// moment, dials nobody but Alice: two dials crossing would leave a
	// duplicate connection to close, and a line sent on it would be
	// counted as sent and never as received.
	a := netTestStart(t, "Alice", nil)
	b := netTestStart(t, "Bob", func(cfg *Config) {
		netTestSeeds(a)(cfg)
		cfg.MaxOutbound = 1
	})
	netTestWaitFor(t, 30*time.Second, "Bob to be connected to Alice", func() bool { return a.connectedTo(b) && b.connectedTo(a) })
	c := netTestStart(t, "Carol", netTestSeeds(a))
	nodes := []*netTestNode{a, b, c}
	total := func() Stats {
		var sum Stats
		for _, n := range nodes {
			st := n.Stats()
			sum.Received += st.Received
			sum.Duplicates += st.Duplicates
			sum.Relayed += st.Relayed
			sum.Sent += st.Sent
		}
		return sum
	}
	// Once every connection's first catch-up has ended, the line can only
	// travel live: a line that arrives by catch-up is stored but not
	// relayed, and would change the count.
	netTestWaitFor(t, 30*time.Second, "a full mesh of three, caught up", func() bool {
		for _, n := range nodes {
			n.mu.Lock()
			settled := len(n.conns) == 2
			for _, conn := range n.conns {
				settled = settled && !conn.cu.busy()
			}
			n.mu.Unlock()
			if !settled {
				return false
			}
		}
		return true
	})
	a.say(t, "hello triangle")
	// Alice sends to both; whoever stores it first passes it to the one
	// peer that is not its sender. Four frames cross the triangle, two of
	// them land where the line already is. Every frame queued has been
	// received once the counts add up.
	netTestWaitFor(t, 30*time.Second, "four receptions", func() bool {
		st := total()
		return st.Received == 4 && st.Received == st.Sent+st.Relayed
	})
	if got, want := total(), (Stats{Received: 4, Duplicates: 2, Relayed: 2, Sent: 2}); got != want {
		t.Errorf("summed over the triangle: %+v, want %+v", got, want)
	}
}

func TestANewcomerFindsRoomAfterTheFirstNodesHaveMetEachOther(t *testing.T) {
	// With max peers 3, four nodes that all dialed each other would be
	// full for good; dialing out to fewer than half keeps room for more.
	const maxPeers = 3
	limit := func(seeds ...*netTestNode) func(*Config) {
		return func(cfg *Config) {
			cfg.MaxPeers = maxPeers
			netTestSeeds(seeds...)(cfg)
		}
	}
	first := []*netTestNode{netTestStart(t, "n0", limit())}
	for _, name := range []string{"n1", "n2", "n3"} {
		n := netTestStart(t, name, limit(first[0]))
		netTestWaitFor(t, 30*time.Second, name+" to be connected", func() bool { return len(n.Users()) > 0 })
		first = append(first, n)
	}
	// The last one has heard of all the others, so that it could dial them.
	netTestWaitFor(t, 30*time.Second, "n3 to know n1 and n2", func() bool {
		return first[3].knows(t, first[1].ID()) && first[3].knows(t, first[2].ID())
	})
	late := netTestStart(t, "late", limit(first[0]))
	netTestWaitFor(t, 30*time.Second, "the newcomer to be connected", func() bool { return len(late.Users()) > 0 })
	first[0].say(t, "welcome")
	netTestWaitFor(t, 30*time.Second, "the newcomer to see the line", func() bool { return late.display.saw("welcome") })
	for _, n := range append(first, late) {
		if got := len(n.Users()); got > maxPeers {
			t.Errorf("%s has %d connections, above %d", n.Name(), got, maxPeers)
		}
	}
}

func TestANodeDoesNotAskForCatchUpAgainWhileAnAnswerIsStillComing(t *testing.T) {
	const interval = 50 * time.Millisecond
	node := netTestStart(t, "Node", func(cfg *Config) { cfg.SyncInterval = interval })
	key, _ := netTestNewKey(t)
	peer := netTestDialTLS(t, node.Addr().String(), key)
	if err := peer.join("Peer"); err != nil {
		t.Fatal(err)
	}
	// A reader answers the node's fingerprint queries with one origin
	// under each prefix, which the node lacks, and hands over each
	// complete SYNC request (one may span frames) until the connection
	// closes.
	requests := make(chan struct{}, 100)
	var round atomic.Uint64 // of the last request, which SYNCED repeats
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			typ, payload, err := peer.fr.Next()
			if err != nil {
				return
			}
			var q wire.SyncQueryMsg
			if typ == wire.FrameSyncQuery && json.Unmarshal(payload, &q) == nil {
				out := wire.SyncPrintsMsg{Round: q.Round}
				for _, p := range q.Prefixes {
					node := wire.PrintNode{Prefix: p, Counts: make([]uint32, 16), Sums: make([]byte, 256)}
					for i := range node.Counts {
						node.Counts[i], node.Sums[16*i] = 1, 1
					}
					out.Nodes = append(out.Nodes, node)
				}
				if peer.write(wire.FrameSyncPrints, out) != nil {
					return
				}
			}
			var msg wire.SyncMsg
			if typ == wire.FrameSync && json.Unmarshal(payload, &msg) == nil && !msg.More {
				round.Store(msg.Round)
				requests <- struct{}{}
			}
		}
	}()
	t.Cleanup(func() {
		peer.tc.Close()
		<-done
	})
	// syncs counts the requests that arrive within d.
	syncs := func(d time.Duration) int {
		count := 0
		window := time.NewTimer(d)
		defer window.Stop()
		for {
			select {
			case <-requests:
				count++
			case <-window.C:
				return count
			}
		}
	}
	// Unanswered, the request made on connecting stays the only one, over
	// many intervals.
	if got := syncs(20 * interval); got != 1 {
		t.Fatalf("%d SYNC requests while the first was unanswered, want 1", got)
	}
	if err := peer.write(wire.FrameSynced, wire.SyncedMsg{Round: round.Load()}); err != nil {
		t.Fatal(err)
	}
	// Answered, the node asks again at its next interval.
	select {
	case <-requests:
	case <-time.After(30 * time.Second):
		t.Fatalf("no SYNC request after the answer ended")
	}
}
