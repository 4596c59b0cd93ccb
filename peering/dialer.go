package peering

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// target is a node (or, for a --peer address, a place) the dialer keeps
// trying to be connected to, with its own backoff.
type target struct {
	key      string          // the ID in hex, or "seed " + address
	id       eventlog.NodeID // zero while a seed's ID is unknown
	addrs    []string        // where to try, best first
	addr     string          // the address of the dial in flight
	next     int             // which address the next dial tries
	failures int             // consecutive; drives the backoff
	due      time.Time       // not before
	lastGood time.Time       // last time a connection to it worked
	learned  time.Time       // when it became a target
	dialing  bool
}

// loadTargets fills the dialer from the peer table, so a restarted node
// redials everyone it knew, and picks up each peer's failures so that a
// long-dead peer stays backed off across restarts.
func (n *Node) loadTargets() error {
	table, err := n.log.Peers()
	if err != nil {
		return fmt.Errorf("read peer table: %w", err)
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range table {
		if p.BannedAt(now) {
			n.banned[p.ID] = p.BannedUntil
			continue
		}
		if len(p.Addrs) == 0 || n.stale(p, now) {
			continue
		}
		t := &target{key: p.ID.String(), id: p.ID, addrs: p.Addrs, failures: p.DialFailures, lastGood: p.LastConnect}
		if p.DialFailures > 0 {
			t.due = p.LastDialFailure.Add(n.cfg.Backoff.Delay(p.DialFailures, rand.Float64))
		}
		n.targets[t.key] = t
	}
	for _, addr := range n.cfg.Seeds {
		n.dialNowLocked(addr)
	}
	return nil
}

// dialNowLocked makes addr due at once, whatever its backoff says: a
// --peer or /connect address is a person asking for it. An address of a
// known peer moves that peer's dial forward; any other becomes a seed,
// dialed until its ID is known.
func (n *Node) dialNowLocked(addr string) {
	if t := n.targetAtLocked(addr); t != nil {
		t.due = time.Time{}
		return
	}
	n.targets["seed "+addr] = &target{key: "seed " + addr, addrs: []string{addr}}
}

// targetAtLocked returns the dialer's target at addr, or nil.
func (n *Node) targetAtLocked(addr string) *target {
	for _, t := range n.targets {
		if slices.Contains(t.addrs, addr) {
			return t
		}
	}
	return nil
}

// minDialPass spaces the dial loop's passes. A pass walks every target
// under n.mu (about 0.5 ms at 10,000 targets here, BenchmarkDialPass), and
// dials of invented addresses fail at once, each waking the loop: unpaced,
// a flood of such names kept the lock busy and slowed the whole node.
const minDialPass = 20 * time.Millisecond

// dialPassRest is how many times as long as a pass held n.mu the loop
// leaves it free before the next pass. A pass is not always as quick as
// minDialPass assumes: under the race detector, with other processes on
// both cores, one over 10,000 targets held the lock for 0.1 to 0.9 s, the
// passes came one after another, and every line shown and every dial
// waited for them.
const dialPassRest = 3

// dialLoop starts the dials that are due, within the bounds, and sleeps
// until the next one is due or something changes: at most one pass per
// minDialPass, and passes hold n.mu at most a quarter of the time.
func (n *Node) dialLoop(ctx context.Context) {
	defer n.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		passed := time.Now()
		wait, held := n.dialDue(ctx)
		ended := time.Now()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-timer.C:
		}
		rest := max(minDialPass-time.Since(passed), dialPassRest*held-time.Since(ended))
		if rest > 0 {
			timer.Reset(rest)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
	}
}

func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// dialDue launches the due dials it may, best candidates first, and
// returns how long until the next one is due and how long it held n.mu.
func (n *Node) dialDue(ctx context.Context) (wait, held time.Duration) {
	n.mu.Lock()
	now := time.Now()
	defer func() {
		held = time.Since(now)
		n.mu.Unlock()
	}()
	wait = time.Hour
	var due []*target
	for key, t := range n.targets {
		if t.dialing || n.conns[t.id] != nil || n.bannedLocked(t.id) {
			continue
		}
		if d := t.due.Sub(now); d > 0 {
			// Backed off: no need to ask the penalties, which can only
			// put it off further (and take a lock each).
			wait = min(wait, d)
			continue
		}
		if d := n.penalties.after(t.id, t.due).Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		t.addrs = slices.DeleteFunc(t.addrs, func(a string) bool { return n.selfAddrs[a] || n.reach.hidden(a) })
		if len(t.addrs) == 0 || (t.id.IsZero() && n.connectedAtLocked(t.addrs[0])) {
			// Nothing left to dial, or a --peer address that turned
			// out to be a peer connected already.
			delete(n.targets, key)
			continue
		}
		due = append(due, t)
	}
	// When the bounds leave room for only some dials (--max-peers after
	// a restart, say), prefer peers that worked recently, then those that
	// failed least, then those heard of last (a flood of names that lead
	// nowhere does not hold a newcomer back), and among equals pick at
	// random so that nodes spread their links. Only the few that can be
	// dialed now are picked, so that ten thousand targets cost a pass,
	// not a sort, per round.
	rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	due = bestTargets(due, n.cfg.MaxParallelDials)
	outbound := 0
	for _, c := range n.conns {
		if !c.inbound {
			outbound++
		}
	}
	for _, t := range due {
		if len(n.conns)+n.dialing >= n.cfg.MaxPeers || n.dialing >= n.cfg.MaxParallelDials {
			break // a finished dial or a lost peer pokes the loop
		}
		if !t.id.IsZero() && outbound+n.dialing >= n.cfg.MaxOutbound {
			continue // the rest of MaxPeers is for peers that dial in
		}
		t.addr = t.addrs[t.next%len(t.addrs)]
		t.next++
		t.dialing = true
		n.dialing++
		n.open++
		n.wg.Add(1)
		go n.dial(ctx, t)
	}
	return wait, 0 // held is set as n.mu is let go
}

// bestTargets returns the k targets of due to dial first (see dialDue),
// best first, and every seed, which the outbound bound does not hold back.
func bestTargets(due []*target, k int) []*target {
	better := func(a, b *target) bool {
		if !a.lastGood.Equal(b.lastGood) {
			return a.lastGood.After(b.lastGood)
		}
		if a.failures != b.failures {
			return a.failures < b.failures
		}
		return a.learned.After(b.learned)
	}
	var best, seeds []*target
	for _, t := range due {
		if t.id.IsZero() {
			seeds = append(seeds, t)
			continue
		}
		i := len(best)
		for i > 0 && better(t, best[i-1]) {
			i--
		}
		if i < k {
			best = slices.Insert(best, i, t)
			if len(best) > k {
				best = best[:k]
			}
		}
	}
	return append(seeds, best...)
}

// connectedAtLocked reports whether a connected peer listens at addr.
func (n *Node) connectedAtLocked(addr string) bool {
	for _, c := range n.conns {
		if slices.Contains(c.addrs, addr) {
			return true
		}
	}
	return false
}

// stale reports whether a peer has been unreachable for so long that it
// is neither dialed nor passed on any more. Its row stays in the table
// (the log keeps everything), so it comes back if it dials in.
func (n *Node) stale(p eventlog.Peer, now time.Time) bool {
	if p.DialFailures == 0 {
		return false
	}
	lastGood := p.LastConnect
	if lastGood.IsZero() {
		lastGood = p.FirstSeen
	}
	return now.Sub(lastGood) > n.cfg.StaleAfter
}

func (n *Node) dial(ctx context.Context, t *target) {
	defer n.wg.Done()
	defer n.release("")
	d := net.Dialer{Timeout: n.cfg.HandshakeTimeout}
	raw, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		n.dialDone(t, nil, err)
		return
	}
	n.serve(ctx, raw, t)
}

// dialDone updates t after its dial's handshake, successful or not.
func (n *Node) dialDone(t *target, c *conn, err error) {
	if err == nil && !t.id.IsZero() && c.id != t.id {
		// The address now belongs to another node: connect to that one,
		// but it does not count for t.
		err = fmt.Errorf("%s is now %s", t.addr, c.id.Short())
		n.mu.Lock()
		t.addrs = slices.DeleteFunc(t.addrs, func(a string) bool { return a == t.addr })
		n.mu.Unlock()
	}
	n.mu.Lock()
	t.dialing = false
	switch {
	case err == nil:
		n.dialing--
		t.failures, t.next, t.lastGood = 0, 0, time.Now()
		if t.id.IsZero() {
			// A seed resolved: from now on the peer is dialed by ID.
			delete(n.targets, t.key)
			n.ensureTargetLocked(c.id, c.addrs)
		}
		n.mu.Unlock()
		n.poke()
		return
	case errors.Is(err, errSelf):
		n.dialing--
		if t.id.IsZero() {
			delete(n.targets, t.key)
		}
		n.mu.Unlock()
		n.logger.Info().Str("addr", t.addr).Msg("address is this node; not dialing it again")
		n.poke()
		return
	}
	t.failures++
	if errors.Is(err, errFull) {
		t.failures = max(t.failures, 4) // a full peer stays full for a while
	}
	t.due = time.Now().Add(n.cfg.Backoff.Delay(t.failures, rand.Float64))
	if !t.id.IsZero() && t.failures > 8 && time.Since(t.lastGood) > n.cfg.StaleAfter {
		delete(n.targets, t.key) // aged out: unreachable for days
	}
	id, addr, failures, due := t.id, t.addr, t.failures, t.due
	n.mu.Unlock()
	// The dial keeps its slot until the failure is recorded: otherwise
	// dials that fail at once would pile up waiting for the disk, each
	// holding a connection, while new ones start in their place.
	defer func() {
		n.mu.Lock()
		n.dialing--
		n.mu.Unlock()
		n.poke()
	}()
	if errors.Is(err, context.Canceled) {
		return
	}
	n.stats.dialFailures.Add(1)
	n.logger.Info().Err(err).Str("addr", addr).Int("failures", failures).Time("retry", due).Msg("dial failed")
	if !id.IsZero() && n.dialFailRecords.Allow() {
		// Remembered, so that after a restart a dead peer stays backed
		// off; bounded, so that names of nodes that never existed cannot
		// grow the log. (Nor the table: the log does not store the
		// failure of a target whose row a full table evicted.)
		recordCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := n.log.Append(recordCtx, eventlog.DialFailed{ID: id, Addr: addr, Error: err.Error()}); err != nil {
			n.logger.Error().Err(err).Msg("append DIAL_FAILED")
		}
	}
}

func (n *Node) markSelf(t *target) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.selfAddrs[t.addr] = true
}

// learn adds a node heard of in PEERS to the dialer.
func (n *Node) learn(id eventlog.NodeID, addrs []string) {
	n.mu.Lock()
	added := n.ensureTargetLocked(id, addrs)
	n.mu.Unlock()
	if added {
		n.poke()
	}
}

func (n *Node) ensureTargetLocked(id eventlog.NodeID, addrs []string) bool {
	if id == n.self || n.bannedLocked(id) {
		return false
	}
	if t := n.targets[id.String()]; t != nil {
		t.addrs = eventlog.MergeAddrs(t.addrs, addrs)
		return false
	}
	if len(n.targets) >= n.cfg.MaxKnownPeers && !n.evictTargetLocked() {
		return false // whatever peers claim, the dialer's work stays bounded
	}
	n.targets[id.String()] = &target{key: id.String(), id: id, addrs: eventlog.MergeAddrs(nil, addrs), learned: time.Now()}
	return true
}

// evictTargetLocked makes room among the dialer's targets: it forgets the
// targets worth least, hearsay that never connected before any peer that
// did, and among those the ones that failed most. Learning never stops: a
// table full of names that lead nowhere gives way to a new name, which is
// dialed at once. A target being dialed is kept.
//
// Finding the worst is a walk over every target under n.mu, so one walk
// forgets evictBatch of them (targetsToEvict): a flood of new names past
// the bound would otherwise pay a walk for each name, and every step of
// the node that takes n.mu would wait for them.
func (n *Node) evictTargetLocked() bool {
	worst := targetsToEvict(n.targets, evictBatch(n.cfg.MaxKnownPeers), func(t *target) bool {
		return t.dialing || t.id.IsZero() || n.conns[t.id] != nil
	})
	for _, t := range worst {
		delete(n.targets, t.key)
	}
	return len(worst) > 0
}

// evictBatch is how many targets one walk forgets at the bound of max: a
// hundredth of them, so that the names past the bound cost a walk per
// hundred, and the dialer forgets at most that many more than it must.
func evictBatch(max int) int { return 1 + max/100 }

// worseTarget reports whether a is worth less than b as a target:
// hearsay that never connected first, then the one that failed more,
// then the one that connected longer ago.
func worseTarget(a, b *target) bool {
	if a.lastGood.IsZero() != b.lastGood.IsZero() {
		return a.lastGood.IsZero()
	}
	if a.failures != b.failures {
		return a.failures > b.failures
	}
	return a.lastGood.Before(b.lastGood)
}

// targetsToEvict returns up to k of targets, the worst (worseTarget),
// leaving out those kept says to keep; one walk, and a heap of k.
func targetsToEvict(targets map[string]*target, k int, kept func(*target) bool) []*target {
	h := evictHeap{}
	for _, t := range targets {
		switch {
		case kept(t):
		case len(h) < k:
			heap.Push(&h, t)
		case worseTarget(t, h[0]):
			h[0] = t
			heap.Fix(&h, 0)
		}
	}
	return h
}

// evictHeap holds the worst targets found so far, the best of them on
// top, to be replaced by any worse one.
type evictHeap []*target

func (h evictHeap) Len() int           { return len(h) }
func (h evictHeap) Less(i, j int) bool { return worseTarget(h[j], h[i]) }
func (h evictHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *evictHeap) Push(x any)        { *h = append(*h, x.(*target)) }
func (h *evictHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// peerDown schedules the redial of a peer whose connection ended: first
// after the base delay, then backing off as dials fail.
func (n *Node) peerDown(c *conn) {
	n.mu.Lock()
	if n.targets[c.id.String()] == nil && !n.bannedLocked(c.id) &&
		(len(n.targets) < n.cfg.MaxKnownPeers || n.evictTargetLocked()) {
		// A peer that was connected is redialed, ahead of hearsay, which
		// gives way first when the targets are at their bound.
		n.targets[c.id.String()] = &target{key: c.id.String(), id: c.id, lastGood: time.Now()}
	}
	if t := n.targets[c.id.String()]; t != nil {
		t.addrs = eventlog.MergeAddrs(c.addrs, t.addrs)
		t.failures = 1 // the connection was up: the backoff starts over
		var bye errGoodbye
		if errors.As(c.closeErr, &bye) && bye.reason == errFull.Error() {
			// A full peer will stay full for a while.
			t.failures = max(t.failures, 4)
		}
		t.due = time.Now().Add(n.cfg.Backoff.Delay(t.failures, rand.Float64))
	}
	n.mu.Unlock()
	n.poke()
}
