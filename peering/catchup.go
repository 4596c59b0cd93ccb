package peering

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// Bounds of reconciliation.
const (
	// leafOrigins is how many of its own origins under one prefix a node
	// lists in a SYNC rather than splitting the prefix further.
	leafOrigins = 8
	// maxQueriesInFlight bounds the SYNCQ frames a node sends before
	// their answers came, and so the queries a peer may have waiting.
	maxQueriesInFlight = 4
	// maxFreeCatchupTail is how many CATCHUP lines past its highest seqs
	// (or of origins it holds nothing of) a node takes free of the chat
	// budget per request: it cannot know how many there are, and the
	// contract's catch-up of 100k messages must get through. How many
	// origins it holds nothing of a request may bring is bounded apart:
	// see askedState.
	maxFreeCatchupTail = 200_000
)

// Limiters of one connection's catch-up, in bytes and log rows. The
// answer side reads at most answerRowsPerSec rows of the log (a summary
// item walked for a fingerprint counts 1/16 of a row) and sends at most
// answerBytesPerSec of CATCHUP; the asking side takes free CATCHUP at most
// at catchupInBytesPerSec, then stops reading. A peer's SYNC is answered
// at most once per SyncInterval on average, twice back to back (so that a
// HAVE right after a connection's first exchange is still answered at
// once); its HAVE starts a round of this node's at most as often.
//
// The rates sit above what one connection reaches between two nodes on
// two cores (about 100,000 chained lines a second, 26 MB of LINES per
// 100,000 lines), so they pace a peer that asks or answers more than an
// honest catch-up could, and never an honest one: at 16 MiB/s and 50,000
// rows a second they had become the bound of a newcomer's catch-up.
const (
	answerRowsPerSec     = 100_000
	answerBytesPerSec    = 32 << 20
	catchupInBytesPerSec = 32 << 20
	answerBurst          = 2
)

// Phases of this node's own catch-up round on one connection.
const (
	phaseIdle        int32 = iota
	phaseReconciling       // SYNCQ sent, comparing fingerprints
	phaseAwaiting          // SYNC sent, waiting for the answer to end
)

// catchup is one connection's catch-up, both ways: this node's own rounds
// (compare fingerprints, send SYNC for what differs, take the CATCHUP
// answer free of the chat budget, up to a deadline) and its answers to the
// peer's (fingerprints, then CATCHUP). It owns its limiters, deadline and
// request state, so nothing a peer does to it reaches another connection.
//
// The read loop calls the on* methods and admit; they decode, check and
// hand over, and never wait for the loops below, which may be waiting for
// this peer to read. run (the ask loop) sends only through the live queue
// and never blocks on the peer; answerLoop streams CATCHUP through the
// bulk queue at the peer's pace.
type catchup struct {
	n          *Node
	c          *conn
	reconciles bool // the peer speaks version 2
	version    int  // the peer's protocol version

	phase    atomic.Int32
	progress atomic.Int64  // unix nanos of the last sign of life of the answer
	awaiting atomic.Uint64 // the round of the request in flight (version 2)

	mu    sync.Mutex
	asked *askedState // what this node's SYNC in flight said it lacks

	have chan struct{}
	// timedOut tells the ingest loop that an answer was given up on at
	// its deadline: what it held back of the answer is decided then.
	timedOut chan struct{}
	prints   chan wire.SyncPrintsMsg
	queries  chan wire.SyncQueryMsg
	reqs     chan *syncRequest
	acc      *syncRequest // a SYNC request being read (read loop only)

	rowsOut  *rate.Limiter
	bytesOut *rate.Limiter
	bytesIn  *rate.Limiter
	answers  *rate.Limiter
	rounds   *rate.Limiter
	// freeAuthors counts the origins the log never held that CATCHUP
	// brought free: Config.CatchupAuthors, refilled over each
	// SyncInterval; each takes a token of the node's bucket
	// (Node.catchupAuthors) too. A request asks only for what both have
	// room for, so an honest answer never runs out.
	freeAuthors *rate.Limiter

	// What this connection's catch-up sent, for docs/SCALING.md: the
	// request side (SYNCQ, SYNCFP, SYNC) and the answers (CATCHUP,
	// LINES, SYNCED), in bytes, and the rounds begun.
	requestBytes, answerBytes, roundsBegun atomic.Uint64
	// linesFrames counts the answers' LINES frames.
	linesFrames atomic.Uint64

	// Ask loop only.
	round    *reconcileRound
	roundSeq uint64
}

// askedState is what this node's SYNC in flight told the peer it lacks:
// the CATCHUP lines that fall there are free, up to free of them.
//
// Lines of an origin the request lists are free where the request said it
// lacks them. An origin inside the scope that it does not list is one this
// node holds nothing of, and nothing says how many such a peer may have:
// they are free only while the request lets new authors in. From a
// version 2 peer, under each scope prefix at most as many as the peer
// said it holds there in the fingerprints that made the prefix a leaf
// (claims), and the request asks only for prefixes whose claims add up to
// what the bucket below holds; from a version 1 peer, which says nothing,
// Config.CatchupAuthors in all. Either way each takes a token of the
// connection's freeAuthors bucket, so neither a peer that lies in its
// counts nor an old one that cannot tell brings more than
// Config.CatchupAuthors per request, nor more per connection than that
// again per SyncInterval; and every one takes a token of the node's
// bucket, so identities of one attacker together bring no more than
// Config.CatchupAuthors and Config.CatchupAuthorsPerHour. A line of an origin past those bounds
// is charged as a live line: chat budget and new-author budget, and the
// penalty of a flood.
type askedState struct {
	scope   prefixSet
	origins map[eventlog.NodeID]wire.SyncOrigin
	free    int64
	// claims is, per scope prefix, how many more origins this node holds
	// nothing of may come free; a version 1 request's one prefix is "".
	// Without claims, only the bucket counts.
	claims map[string]int64
	// newcomers are the origins let in free so far: their further lines
	// are free like a listed origin's tail.
	newcomers map[eventlog.NodeID]bool
	// cut is set when prefixes that differ were left for a later round
	// (past the request's bytes or the new authors it had room for): the
	// next round starts once this one ends, as a HAVE would start it.
	cut bool
	// speaksForSelf is set when the answer brings whatever the peer holds
	// of this node's own lines past what it holds itself (speaksForSelf).
	speaksForSelf bool
}

// reconcileRound is the ask loop's state of one reconciliation. It holds
// no summaries of its own: each step reads the newest, so the connections
// of a node share one copy however many rounds are in flight, and a
// change during the round is compared as it is now.
type reconcileRound struct {
	id       uint64
	queue    []string
	asked    map[string]bool
	inflight int
	leaves   []string
	claims   map[string]uint32 // per leaf, how many origins the peer holds there
	// blind is set when the peer said it holds nothing under a prefix of
	// this node's own ID: it holds none of this node's lines, so its
	// round cannot tell what the network holds of them (firstCatchupEnded).
	blind bool
}

func newCatchup(n *Node, c *conn, peerVersion int) *catchup {
	interval := rate.Every(n.cfg.SyncInterval)
	return &catchup{
		n:          n,
		c:          c,
		reconciles: peerVersion >= 2,
		version:    peerVersion,
		have:       make(chan struct{}, 1),
		timedOut:   make(chan struct{}, 1),
		prints:     make(chan wire.SyncPrintsMsg, maxQueriesInFlight),
		queries:    make(chan wire.SyncQueryMsg, maxQueriesInFlight),
		reqs:       make(chan *syncRequest, 1),
		rowsOut:    rate.NewLimiter(answerRowsPerSec, answerRowsPerSec),
		bytesOut:   rate.NewLimiter(answerBytesPerSec, max(answerBytesPerSec/4, 2*wire.DefaultMaxFrame, 2*n.cfg.MaxFrame)),
		bytesIn:    rate.NewLimiter(catchupInBytesPerSec, max(catchupInBytesPerSec/4, 2*wire.DefaultMaxFrame, 2*n.cfg.MaxFrame)),
		answers:    rate.NewLimiter(interval, answerBurst),
		rounds:     rate.NewLimiter(interval, answerBurst),
		freeAuthors: rate.NewLimiter(rate.Limit(float64(n.cfg.CatchupAuthors)/n.cfg.SyncInterval.Seconds()),
			n.cfg.CatchupAuthors),
	}
}

// busy reports whether this node's own round is in flight.
func (cu *catchup) busy() bool { return cu.phase.Load() != phaseIdle }

func (cu *catchup) alive() { cu.progress.Store(time.Now().UnixNano()) }

// syncLoop runs the connection's catch-up until it closes.
func (c *conn) syncLoop() {
	defer c.wg.Done()
	c.cu.run()
}

// run is the ask loop: it starts this node's rounds (at connect, every
// SyncInterval, on the peer's HAVE), follows them through, gives up on an
// answer that stalls for SyncTimeout, and answers the peer's SYNCQ.
func (cu *catchup) run() {
	c, n := cu.c, cu.n
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.wg.Add(1)
	go cu.answerLoop(ctx)

	cu.startRound()
	tick := time.NewTicker(n.cfg.SyncInterval)
	defer tick.Stop()
	deadline := time.NewTicker(max(n.cfg.SyncTimeout/4, time.Millisecond))
	defer deadline.Stop()
	for {
		var err error
		select {
		case <-tick.C:
			cu.startRound()
		case <-cu.have:
			if !cu.busy() && cu.rounds.Allow() {
				cu.startRound()
			}
		case msg := <-cu.prints:
			err = cu.onPrintsInLoop(msg)
		case q := <-cu.queries:
			err = cu.answerQuery(ctx, q)
		case <-deadline.C:
			cu.checkDeadline()
		case <-c.closing:
			return
		}
		if err != nil {
			if !errors.Is(err, errConnClosing) {
				n.punish(c.id, err)
				c.close(err)
			}
			return
		}
	}
}

// answerLoop answers the peer's SYNC requests, one at a time, newest
// first, at most answerBurst back to back and one per SyncInterval after.
func (cu *catchup) answerLoop(ctx context.Context) {
	c, n := cu.c, cu.n
	defer c.wg.Done()
	for {
		select {
		case req := <-cu.reqs:
			if err := cu.answers.Wait(ctx); err != nil {
				cu.release(req)
				return
			}
			// A newer request may have come while waiting.
			select {
			case newer := <-cu.reqs:
				cu.release(req)
				req = newer
			default:
			}
			err := cu.answerSync(ctx, req)
			cu.release(req)
			if err != nil {
				if !errors.Is(err, errConnClosing) && ctx.Err() == nil {
					n.logger.Error().Err(err).Str("peer", c.id.Short()).Msg("answer SYNC")
					// Left open, the connection would answer no SYNC
					// again, and the peer would wait for this SYNCED
					// in vain: end it, to be redialed.
					c.close(fmt.Errorf("answer SYNC: %w", err))
				}
				return
			}
		case <-c.closing:
			return
		}
	}
}

// startRound begins a round of this node's catch-up unless one is in
// flight: the compare-and-swap is the only way in, so neither the peer's
// HAVE nor its SYNCED can make two overlap.
func (cu *catchup) startRound() {
	if !cu.phase.CompareAndSwap(phaseIdle, phaseReconciling) {
		return
	}
	cu.alive()
	cu.roundsBegun.Add(1)
	if err := cu.beginRound(); err != nil {
		cu.phase.Store(phaseIdle)
		cu.n.logger.Error().Err(err).Str("peer", cu.c.id.Short()).Msg("send SYNC")
	}
}

func (cu *catchup) beginRound() error {
	if !cu.reconciles {
		states, err := cu.n.log.SyncState()
		if err != nil {
			return fmt.Errorf("read sync state: %w", err)
		}
		frames, listed, err := syncFrames(states, cu.n.cfg.MaxFrame)
		if err != nil {
			return err
		}
		// A version 1 peer's answer brings every origin but those left
		// out past the request's bounds, this node's own among them if
		// the peer holds it.
		a := &askedState{origins: make(map[eventlog.NodeID]wire.SyncOrigin, listed), free: maxFreeCatchupTail,
			claims: map[string]int64{"": int64(cu.n.cfg.CatchupAuthors)}, speaksForSelf: true}
		for _, s := range states[:listed] {
			o := syncOrigin(s)
			a.origins[s.Origin] = o
			a.free += o.Lacked()
		}
		cu.sendRequest(a, frames)
		return nil
	}
	cu.roundSeq++
	// Even a node that holds little compares first: the fingerprints
	// tell it how many origins the peer holds under each prefix, which
	// bounds the new authors its answer may bring free (askedState). A
	// newcomer's round costs one query more for it.
	cu.round = &reconcileRound{id: cu.roundSeq, queue: []string{""}, asked: map[string]bool{}, claims: map[string]uint32{}}
	cu.sendQueries()
	return nil
}

// sendQueries keeps up to maxQueriesInFlight SYNCQ frames outstanding.
func (cu *catchup) sendQueries() {
	r := cu.round
	for r.inflight < maxQueriesInFlight && len(r.queue) > 0 {
		k := min(len(r.queue), wire.MaxQueryPrefixes)
		q := wire.SyncQueryMsg{Round: r.id, Prefixes: slices.Clone(r.queue[:k])}
		r.queue = r.queue[k:]
		for _, p := range q.Prefixes {
			r.asked[p] = true
		}
		r.inflight++
		cu.sendRequestFrame(wire.FrameSyncQuery, q)
	}
}

// onPrintsInLoop compares the peer's fingerprints with this node's own:
// equal children are done, differing ones are split further or, once
// small here, become leaves of the SYNC request.
func (cu *catchup) onPrintsInLoop(msg wire.SyncPrintsMsg) error {
	r := cu.round
	if cu.phase.Load() != phaseReconciling || r == nil || msg.Round != r.id {
		return nil // the answer to a round given up on
	}
	if r.inflight == 0 {
		return violation(errors.New("SYNCFP with no SYNCQ waiting for it"))
	}
	cu.alive()
	r.inflight--
	snap, err := cu.n.log.Summaries()
	if err != nil {
		return fmt.Errorf("read summaries: %w", err)
	}
	self := cu.n.self
	for _, node := range msg.Nodes {
		if !r.asked[node.Prefix] {
			return violation(fmt.Errorf("SYNCFP for prefix %q, which was not asked", node.Prefix))
		}
		delete(r.asked, node.Prefix)
		if comparePrefix(self, node.Prefix) == 0 && node.Counts[nibble(self, len(node.Prefix))] == 0 {
			r.blind = true
		}
		ours := childPrints(snap, node.Prefix)
		for i := range 16 {
			var theirs [16]byte
			copy(theirs[:], node.Sums[16*i:])
			if node.Counts[i] == 0 || (ours.counts[i] == node.Counts[i] && ours.sums[i] == theirs) {
				continue // the peer holds nothing here, or the same
			}
			child := node.Prefix + string(wire.HexDigits[i])
			if ours.counts[i] <= leafOrigins || len(child) >= wire.MaxPrefixDepth {
				r.leaves = append(r.leaves, child)
				r.claims[child] = node.Counts[i]
			} else {
				r.queue = append(r.queue, child)
			}
		}
	}
	cu.sendQueries()
	if r.inflight > 0 || len(r.queue) > 0 {
		return nil
	}
	cu.round = nil
	return cu.sendScoped(snap, r.leaves, r.claims, r.blind)
}

// sendScoped sends the SYNC request for the given prefixes: this node's
// state of every origin it holds under them, as many whole prefixes as fit
// in maxSyncRequestBytes and whose claims (how many origins the peer said
// it holds there; none if absent) fit in the new authors the connection
// and the node may still take free; the next round does the rest. A prefix the peer
// claims more origins under than the whole freeAuthors bucket is never
// asked of it: an honest peer holds that many only past
// 16 × Config.CatchupAuthors authors this node lacks.
//
// blind says the peer holds none of this node's own lines (reconcileRound).
func (cu *catchup) sendScoped(snap []eventlog.OriginSummary, leaves []string, claims map[string]uint32, blind bool) error {
	if len(leaves) == 0 {
		cu.phase.CompareAndSwap(phaseReconciling, phaseIdle)
		if cu.speaksForSelf(snap, blind, nil, nil) {
			cu.n.firstCatchupEnded() // nothing differs: nothing to learn
		}
		return nil
	}
	// An eighth of the budget is left for the frames' own overhead, so
	// the peer never counts more than it accepts.
	p := syncPacker{maxFrame: cu.n.cfg.MaxFrame, budget: maxSyncRequestBytes - maxSyncRequestBytes/8, round: cu.roundSeq}
	a := &askedState{origins: map[eventlog.NodeID]wire.SyncOrigin{}, free: maxFreeCatchupTail, claims: map[string]int64{}}
	room := int64(min(cu.freeAuthors.Tokens(), cu.n.catchupAuthors.Tokens()))
	for _, leaf := range leaves {
		claim := int64(claims[leaf])
		if claim > room {
			a.cut = true // for a later round, once the bucket has refilled
			continue
		}
		lo, hi := prefixRange(snap, leaf)
		ids := make([]eventlog.NodeID, 0, hi-lo)
		for _, s := range snap[lo:hi] {
			ids = append(ids, s.Origin)
		}
		states, err := cu.n.log.SyncStateOf(ids)
		if err != nil {
			return fmt.Errorf("read sync state: %w", err)
		}
		cost := len(leaf) + 3
		origins := make([]wire.SyncOrigin, len(states))
		for i, s := range states {
			origins[i] = syncOrigin(s)
			oc, err := originCost(origins[i])
			if err != nil {
				return err
			}
			cost += oc
		}
		if cost > p.budget {
			a.cut = true
			break
		}
		if _, err := p.addScope(leaf); err != nil {
			return err
		}
		for _, o := range origins {
			if _, err := p.add(o); err != nil {
				return err
			}
			a.origins[o.Origin] = o
			a.free += o.Lacked()
		}
		a.scope.add(leaf)
		a.claims[leaf] = claim
		room -= claim
	}
	a.speaksForSelf = cu.speaksForSelf(snap, blind, leaves, a)
	if len(a.scope.set) == 0 {
		// Nothing fitted: asking with an empty scope would mean every
		// origin.
		cu.phase.CompareAndSwap(phaseReconciling, phaseIdle)
		if a.speaksForSelf {
			cu.n.firstCatchupEnded()
		}
		return nil
	}
	frames, err := p.done()
	if err != nil {
		return err
	}
	cu.sendRequest(a, frames)
	return nil
}

// speaksForSelf reports whether a round of this node's with the peer
// ends knowing what the peer holds of this node's own lines, and may so
// end the wait of the node's first own lines (firstCatchupEnded): the
// peer holds some of them, and either its fingerprints show it holds the
// same under the own ID's prefix or the request (a; nil if the round
// asks nothing) asks for that prefix. A peer that holds none of them, a
// newcomer or one that missed them, cannot tell a node restored from an
// old copy what it lost; nor can a round that left the own prefix for a
// later one. A node that holds none of its own lines waits for no one:
// it is new, or its copy is older than its first line, which nobody can
// tell.
func (cu *catchup) speaksForSelf(snap []eventlog.OriginSummary, blind bool, leaves []string, a *askedState) bool {
	self := cu.n.self
	if lo, hi := prefixRange(snap, self.String()); lo == hi {
		return true
	}
	if blind {
		return false
	}
	for _, leaf := range leaves {
		if comparePrefix(self, leaf) == 0 {
			return a != nil && a.scope.set[leaf]
		}
	}
	return true // the peer holds the same under the own prefix
}

// sendRequest records what the request says this node lacks, then sends it.
func (cu *catchup) sendRequest(a *askedState, frames [][]byte) {
	cu.mu.Lock()
	cu.asked = a
	cu.mu.Unlock()
	if cu.reconciles {
		cu.awaiting.Store(cu.roundSeq)
	}
	cu.phase.Store(phaseAwaiting)
	cu.n.caught.asked(cu.c)
	for _, f := range frames {
		cu.requestBytes.Add(uint64(len(f)))
		cu.c.send(f)
	}
}

// sendRequestFrame sends a frame of the request side, counted.
func (cu *catchup) sendRequestFrame(typ string, v any) {
	frame, err := wire.EncodeFrame(typ, v, cu.n.cfg.MaxFrame)
	if err != nil {
		cu.n.logger.Error().Err(err).Str("type", typ).Msg("encode frame")
		return
	}
	cu.requestBytes.Add(uint64(len(frame)))
	cu.c.send(frame)
}

// checkDeadline gives up on an answer that showed no sign of life for
// SyncTimeout: what came is shown, and later CATCHUP is charged.
func (cu *catchup) checkDeadline() {
	if time.Since(time.Unix(0, cu.progress.Load())) < cu.n.cfg.SyncTimeout {
		return
	}
	if cu.phase.CompareAndSwap(phaseReconciling, phaseIdle) {
		cu.round = nil
		cu.endHeldBack()
		cu.n.firstCatchupEnded()
		return
	}
	if cu.phase.CompareAndSwap(phaseAwaiting, phaseIdle) {
		cu.clearAsked()
		cu.n.logger.Debug().Str("peer", cu.c.id.Short()).Dur("silent", time.Since(time.Unix(0, cu.progress.Load()))).Msg("catch-up answer timed out")
		cu.n.caughtUp(cu.c)
		cu.endHeldBack()
		cu.n.firstCatchupEnded()
	}
}

// endHeldBack tells the ingest loop that a round was given up on at its
// deadline: what it held back for a voucher (pendingChain) is decided
// then, as at a SYNCED. A round that silent has no answer in flight, so
// no voucher of an honest peer's is still to come.
func (cu *catchup) endHeldBack() {
	select {
	case cu.timedOut <- struct{}{}:
	default: // one is waiting already
	}
}

// clearAsked ends the request in flight and returns what it asked, or
// nil.
func (cu *catchup) clearAsked() *askedState {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	a := cu.asked
	cu.asked = nil
	return a
}

// onSynced ends this node's request in flight; a SYNCED nobody waits for
// (unasked, or late: the end of a request given up on, which a version 2
// peer tells by its round) is ignored.
func (cu *catchup) onSynced(payload []byte) error {
	var m wire.SyncedMsg
	if err := wire.DecodeStrict(payload, &m); err != nil {
		return violation(fmt.Errorf("SYNCED: %w", err))
	}
	if cu.reconciles && m.Round != cu.awaiting.Load() {
		return nil
	}
	if !cu.phase.CompareAndSwap(phaseAwaiting, phaseIdle) {
		return nil
	}
	a := cu.clearAsked()
	if a != nil && a.cut {
		cu.onHave()
	}
	// Through the ingest queue, so that the view is complete when shown.
	return cu.c.push(inbound{synced: true, speaksForSelf: a != nil && a.speaksForSelf})
}

// onHave notes the peer's HAVE for the ask loop; it never waits.
func (cu *catchup) onHave() {
	select {
	case cu.have <- struct{}{}:
	default:
	}
}

// admit decides what one CATCHUP line costs. A line this node's request
// in flight said it lacks is free of the chat budget, up to the counts the
// request allows (askedState), and paced by the catch-up byte limiter (the
// read loop waits: backpressure, no penalty). Any other is charged as a
// live line: here the chat budget, and free is false so that the ingest
// loop charges its origin to the new-author budget if the log never held
// it (chargeNewAuthors).
func (cu *catchup) admit(ctx context.Context, s eventlog.Signed, size int) (free bool, err error) {
	if cu.phase.Load() == phaseAwaiting && cu.takeFree(s) {
		cu.alive()
		return true, cu.bytesIn.WaitN(ctx, min(size, cu.bytesIn.Burst()))
	}
	return false, cu.c.charge(wire.FrameChat, size)
}

func (cu *catchup) takeFree(s eventlog.Signed) bool {
	origin, seq := s.OriginKey()
	cu.mu.Lock()
	defer cu.mu.Unlock()
	a := cu.asked
	if a == nil || a.free <= 0 {
		return false
	}
	prefix, in := a.scope.find(origin)
	if !in {
		return false
	}
	if o, listed := a.origins[origin]; listed {
		if !o.Wants(seq) {
			return false
		}
	} else if !a.newcomers[origin] {
		// An origin this node holds nothing of, new to this answer.
		if a.claims != nil && a.claims[prefix] <= 0 {
			return false
		}
		if !cu.takeAuthor() {
			return false
		}
		if a.claims != nil {
			a.claims[prefix]--
		}
		if a.newcomers == nil {
			a.newcomers = map[eventlog.NodeID]bool{}
		}
		a.newcomers[origin] = true
	}
	a.free--
	return true
}

// nodeCatchupAuthors is the node's bucket of the new authors catch-up may
// bring over all its connections: Config.CatchupAuthors, refilled at
// Config.CatchupAuthorsPerHour.
func nodeCatchupAuthors(cfg *Config) *rate.Limiter {
	return rate.NewLimiter(rate.Every(time.Hour/time.Duration(cfg.CatchupAuthorsPerHour)), cfg.CatchupAuthors)
}

// takeAuthor takes a token for one new author from the connection's
// bucket and the node's, or from neither.
func (cu *catchup) takeAuthor() bool {
	now := time.Now()
	node := cu.n.catchupAuthors.ReserveN(now, 1)
	if !node.OK() || node.DelayFrom(now) > 0 {
		node.CancelAt(now)
		return false
	}
	if !cu.freeAuthors.AllowN(now, 1) {
		node.CancelAt(now)
		return false
	}
	return true
}

// onQuery hands a peer's SYNCQ to the ask loop; more than
// maxQueriesInFlight unanswered is a violation, since honest nodes wait.
func (cu *catchup) onQuery(payload []byte) error {
	var q wire.SyncQueryMsg
	if err := wire.DecodeStrict(payload, &q); err != nil {
		return violation(fmt.Errorf("SYNCQ: %w", err))
	}
	if err := q.Validate(); err != nil {
		return violation(err)
	}
	select {
	case cu.queries <- q:
		return nil
	default:
		return violation(fmt.Errorf("more than %d SYNCQ unanswered", maxQueriesInFlight))
	}
}

// onPrints hands the peer's SYNCFP to the ask loop.
func (cu *catchup) onPrints(payload []byte) error {
	var m wire.SyncPrintsMsg
	if err := wire.DecodeStrict(payload, &m); err != nil {
		return violation(fmt.Errorf("SYNCFP: %w", err))
	}
	if err := m.Validate(); err != nil {
		return violation(err)
	}
	select {
	case cu.prints <- m:
		return nil
	default:
		return violation(fmt.Errorf("more than %d SYNCFP unasked", maxQueriesInFlight))
	}
}

// answerQuery sends the fingerprints of the children of each prefix asked,
// paying for the summary items it walks.
func (cu *catchup) answerQuery(ctx context.Context, q wire.SyncQueryMsg) error {
	snap, err := cu.n.log.Summaries()
	if err != nil {
		return fmt.Errorf("read summaries: %w", err)
	}
	out := wire.SyncPrintsMsg{Round: q.Round, Nodes: make([]wire.PrintNode, 0, len(q.Prefixes))}
	for _, p := range q.Prefixes {
		lo, hi := prefixRange(snap, p)
		if err := cu.rowsOut.WaitN(ctx, min(1+(hi-lo)/16, cu.rowsOut.Burst())); err != nil {
			return errConnClosing
		}
		cp := childPrints(snap[lo:hi], p)
		node := wire.PrintNode{Prefix: p, Counts: cp.counts[:], Sums: make([]byte, 0, 256)}
		for _, s := range cp.sums {
			node.Sums = append(node.Sums, s[:]...)
		}
		out.Nodes = append(out.Nodes, node)
	}
	cu.sendRequestFrame(wire.FrameSyncPrints, out)
	return nil
}

// nibble is the i-th hex digit of id's value.
func nibble(id eventlog.NodeID, i int) byte {
	b := id[i/2]
	if i%2 == 0 {
		return b >> 4
	}
	return b & 0xf
}

// comparePrefix orders id's first len(p) nibbles against p.
func comparePrefix(id eventlog.NodeID, p string) int {
	for i := 0; i < len(p); i++ {
		a, b := nibble(id, i), byte(strings.IndexByte(wire.HexDigits, p[i]))
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	return 0
}

// prefixRange is the range of the sorted summaries under prefix p.
func prefixRange(snap []eventlog.OriginSummary, p string) (lo, hi int) {
	lo = sort.Search(len(snap), func(i int) bool { return comparePrefix(snap[i].Origin, p) >= 0 })
	hi = lo + sort.Search(len(snap)-lo, func(i int) bool { return comparePrefix(snap[lo+i].Origin, p) > 0 })
	return lo, hi
}

// prints are the fingerprints of the 16 children of a prefix.
type prints struct {
	counts [16]uint32
	sums   [16][16]byte
}

// childPrints fingerprints the children of p among snap, which may be the
// whole summary or just p's range of it. A sum of digests (as Negentropy
// uses) rather than their XOR: an attacker who picks which messages a node
// holds cannot cancel a difference by linear algebra.
func childPrints(snap []eventlog.OriginSummary, p string) prints {
	lo, hi := prefixRange(snap, p)
	var out prints
	var lows, highs [16]uint64
	for _, s := range snap[lo:hi] {
		i := nibble(s.Origin, len(p))
		out.counts[i]++
		lo64, hi64 := leUint64(s.Digest[:8]), leUint64(s.Digest[8:])
		sum := lows[i] + lo64
		carry := uint64(0)
		if sum < lows[i] {
			carry = 1
		}
		lows[i], highs[i] = sum, highs[i]+hi64+carry
	}
	for i := range 16 {
		putLeUint64(out.sums[i][:8], lows[i])
		putLeUint64(out.sums[i][8:], highs[i])
	}
	return out
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func putLeUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// prefixSet is the scope of a SYNC request: a set of origin ID prefixes.
// The empty set, like the set holding "", covers every origin.
type prefixSet struct {
	set  map[string]bool
	lens [wire.MaxPrefixDepth + 1]bool
}

func (s *prefixSet) add(p string) {
	if s.set == nil {
		s.set = map[string]bool{}
	}
	s.set[p] = true
	s.lens[len(p)] = true
}

func (s *prefixSet) all() bool { return len(s.set) == 0 || s.set[""] }

func (s *prefixSet) contains(id eventlog.NodeID) bool {
	_, ok := s.find(id)
	return ok
}

// find returns the shortest prefix of the set that covers id.
func (s *prefixSet) find(id eventlog.NodeID) (string, bool) {
	if s.all() {
		return "", true
	}
	full := hex.EncodeToString(id[:wire.MaxPrefixDepth/2])
	for l, used := range s.lens {
		if used && s.set[full[:l]] {
			return full[:l], true
		}
	}
	return "", false
}

// each calls fn for the summaries within the set, in order, until fn
// returns false.
func (s *prefixSet) each(snap []eventlog.OriginSummary, fn func(eventlog.OriginSummary) bool) {
	if s.all() {
		for _, x := range snap {
			if !fn(x) {
				return
			}
		}
		return
	}
	ps := make([]string, 0, len(s.set))
	for p := range s.set {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	last := "\xff" // no prefix starts with it
	for _, p := range ps {
		if strings.HasPrefix(p, last) {
			continue // inside a shorter prefix already walked
		}
		last = p
		lo, hi := prefixRange(snap, p)
		for _, x := range snap[lo:hi] {
			if !fn(x) {
				return
			}
		}
	}
}
