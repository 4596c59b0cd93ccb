package peering

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// inbound is one signed message (or the end of a catch-up answer) on its
// way from a connection's read loop to its ingest loop.
type inbound struct {
	body eventlog.Signed // nil for the end of a catch-up answer
	live bool            // broadcast now, not caught up
	// charged is a caught-up line that came free of nothing this node
	// asked for: it pays the new-author budget as a live line does.
	charged bool
	synced  bool
	size    int // bytes taken from the connection's ingest room
}

// maxIngestBatch caps the messages verified and appended together.
const maxIngestBatch = 512

// maxCaughtUpShown bounds the lines of one origin shown after a catch-up;
// /history has the rest.
const maxCaughtUpShown = 100

// maxCaughtUpAuthorsShown bounds the authors whose caught-up lines are
// shown as blocks of their own, and the renames shown, per block.
const maxCaughtUpAuthorsShown = 20

// push hands a message to the ingest loop. The queue is bounded: when the
// log cannot keep up, the read loop waits here, stops reading, and TCP
// slows the sender down. Nothing is dropped.
func (c *conn) push(m inbound) error {
	if err := c.ingestRoom.Acquire(c.done, int64(m.size)); err != nil {
		return c.closeErr
	}
	select {
	case c.ingest <- m:
		return nil
	case <-c.closing:
		return c.closeErr
	}
}

// ingestLoop appends what the read loop decoded, in batches: whatever is
// waiting goes into one Append, one fsync, however many messages a burst
// or a catch-up brings. It runs until the read loop closes c.ingest, and
// so also stores what arrived just before a goodbye.
func (c *conn) ingestLoop(ctx context.Context) {
	defer c.wg.Done()
	for first := range c.ingest {
		batch := drain(first, c.ingest, maxIngestBatch)
		// Storing an answer is a sign of its life: a large one must
		// not time out while this node is the slow side.
		caughtUp := !batch[len(batch)-1].live
		if caughtUp {
			c.cu.alive()
		}
		err := c.n.ingest(ctx, c, batch)
		if caughtUp {
			c.cu.alive()
		}
		size := 0
		for _, m := range batch {
			size += m.size
		}
		c.ingestRoom.Release(int64(size))
		if err != nil {
			if ctx.Err() == nil {
				c.n.limitedLog("peer "+c.id.String(), warnLevel).Err(err).Str("peer", c.id.Short()).Msg("dropping peer")
			}
			c.n.punish(c.id, err)
			c.close(err)
			// The read loop is told by c.closing; drain until it
			// closes the queue.
			for range c.ingest {
			}
			return
		}
	}
}

// ingest verifies, appends, shows and relays one batch. Its error ends
// the connection; a violation (a forged or malformed message) also
// penalizes the peer.
func (n *Node) ingest(ctx context.Context, from *conn, batch []inbound) error {
	// In a mesh most copies of a line are ones the log holds already:
	// they are dropped before their signatures cost anything. A forged
	// copy of a held message is dropped the same way, unseen.
	signed := make([]eventlog.Signed, 0, len(batch))
	for _, m := range batch {
		if !m.synced {
			signed = append(signed, m.body)
		}
	}
	held, err := n.log.Holds(signed)
	if err != nil {
		return fmt.Errorf("read origin index: %w", err)
	}
	fresh := make([]inbound, 0, len(batch))
	for i, j := 0, 0; i < len(batch); i++ {
		m := batch[i]
		if !m.synced {
			if held[j] {
				n.stats.countIn(m.live, true)
				j++
				continue
			}
			j++
		}
		fresh = append(fresh, m)
	}
	if err := from.chargeNewAuthors(fresh); err != nil {
		return err
	}
	// A message that fails its check is refused alone: the good ones of
	// the batch are stored, and then the peer that sent it is dropped
	// (the error returned at the end).
	fresh, refused := verifyBatch(fresh)
	bodies := make([]eventlog.Body, 0, len(fresh))
	kept := make([]inbound, 0, len(fresh))
	for _, m := range fresh {
		if m.synced {
			kept = append(kept, m)
			continue
		}
		if origin, _ := m.body.OriginKey(); n.isBanned(origin) {
			continue // neither stored, shown nor relayed
		}
		bodies = append(bodies, m.body)
		kept = append(kept, m)
	}
	var results []eventlog.Result
	if len(bodies) > 0 {
		var err error
		if results, err = n.log.Append(ctx, bodies...); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("append: %w", err)
		}
	}
	i := 0
	for _, m := range kept {
		if m.synced {
			n.caughtUp(from)
			continue
		}
		res := results[i]
		i++
		n.stats.countIn(m.live, res.Duplicate)
		if res.TooFarAhead {
			origin, seq := res.Body.(eventlog.Signed).OriginKey()
			n.logger.Debug().Str("origin", origin.Short()).Uint64("seq", seq).Msg("message too far ahead of what this node holds; not stored")
			continue
		}
		if res.Duplicate {
			continue
		}
		n.receivePrivate(ctx, res.Body)
		if !m.live {
			n.addCaughtUp(res.Body)
			continue
		}
		n.show(res.Body)
		// What goes on is the canonical encoding of what was verified,
		// never the bytes received: padding a peer added dies here.
		frame, err := wire.SignedFrame(res.Body, n.cfg.MaxFrame)
		if err != nil {
			return err
		}
		n.stats.relayed.Add(uint64(n.broadcast(frame, from)))
	}
	return refused
}

// verifyBatch checks the signatures of a batch together
// (eventlog.VerifyBatch) and returns what holds, in order, with the
// violation of the first message that does not, or nil. A bad message is
// refused alone: the good ones around it are kept.
func verifyBatch(batch []inbound) ([]inbound, error) {
	signed := make([]eventlog.Signed, 0, len(batch))
	for _, m := range batch {
		if !m.synced {
			signed = append(signed, m.body)
		}
	}
	errs := eventlog.VerifyBatch(signed)
	good := make([]inbound, 0, len(batch))
	var first error
	i := 0
	for _, m := range batch {
		if m.synced {
			good = append(good, m)
			continue
		}
		err := errs[i]
		i++
		if err == nil {
			good = append(good, m)
			continue
		}
		if first == nil {
			origin, seq := m.body.OriginKey()
			first = violation(fmt.Errorf("%s from origin %s seq %d: %w", m.body.Type(), origin.Short(), seq, err))
		}
	}
	return good, first
}

// show puts a newly stored message on screen.
func (n *Node) show(body eventlog.Body) {
	switch b := body.(type) {
	case eventlog.Chat:
		n.display.ShowChat(b.OriginTime, n.label(b.Origin, b.Name), b.Text)
	case eventlog.Nick:
		n.renamed(b)
	}
}

// renamed updates the name of a connected peer and says so.
func (n *Node) renamed(b eventlog.Nick) {
	n.mu.Lock()
	var old string
	if c := n.conns[b.Origin]; c != nil {
		old, c.name = c.name, b.Name
	}
	n.mu.Unlock()
	if old != "" && old != b.Name {
		n.display.ShowSystem(fmt.Sprintf("%s is now %s", old, n.label(b.Origin, b.Name)))
	}
}

// catchupView collects what catch-up brings, to show it as one block once
// every peer asked has answered: per origin a count, then its last lines.
// When two peers both fill in what this node missed, their answers add up
// to one "N missed messages" line per author.
//
// It is bounded, so that no peer can hold caught-up lines hostage or make
// the node keep them: past maxCaughtUpBytes, or once its oldest line has
// waited viewMaxWaits times Config.SyncTimeout, it is shown whoever still
// owes an answer; and every request has its own deadline, which a silent
// peer reaches after Config.SyncTimeout (catchup.checkDeadline). Showing
// happens outside mu.
type catchupView struct {
	mu       sync.Mutex
	awaiting map[*conn]bool // asked, not answered yet
	pending  viewBatch

	showMu sync.Mutex // orders whole blocks on screen
}

// maxCaughtUpBytes bounds the memory of what catch-up brought and has not
// been shown yet.
const maxCaughtUpBytes = 1 << 20

// viewMaxWaits is how many answer deadlines the view waits for a peer
// that keeps answering but never ends; a large honest catch-up ends well
// within it, and is shown as one block.
const viewMaxWaits = 4

// viewBatch is what catch-up brought since the view was last shown.
type viewBatch struct {
	order  []eventlog.NodeID
	counts map[eventlog.NodeID]int
	lines  map[eventlog.NodeID][]eventlog.Chat
	nicks  []eventlog.Nick
	bytes  int
	since  time.Time // when its first entry came
	// sealed counts private messages and acknowledgements caught up,
	// shown as they came (receivePrivate) but news for peers all the same.
	sealed int
}

func newViewBatch() viewBatch {
	return viewBatch{counts: map[eventlog.NodeID]int{}, lines: map[eventlog.NodeID][]eventlog.Chat{}}
}

func (b *viewBatch) empty() bool { return len(b.order) == 0 && len(b.nicks) == 0 && b.sealed == 0 }

func newCatchupView() *catchupView {
	return &catchupView{awaiting: map[*conn]bool{}, pending: newViewBatch()}
}

// Memory an entry of the view holds beyond its strings.
const (
	viewLineOverhead   = 96
	viewOriginOverhead = 128
)

func chatBytes(c eventlog.Chat) int {
	return len(c.Name) + len(c.Text) + len(c.Sig) + viewLineOverhead
}

// asked notes that c's peer owes an answer.
func (v *catchupView) asked(c *conn) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.awaiting[c] = true
}

// caughtUp notes that c's peer has answered (or is gone, or too late) and
// shows what came once nobody else owes an answer, or once it has waited
// long enough.
func (n *Node) caughtUp(c *conn) {
	v := n.caught
	v.mu.Lock()
	delete(v.awaiting, c)
	due := len(v.awaiting) == 0 || n.viewOverdueLocked()
	if !due {
		v.mu.Unlock()
		return
	}
	batch := v.pending
	v.pending = newViewBatch()
	v.mu.Unlock()
	n.showBatch(batch)
}

func (n *Node) viewOverdueLocked() bool {
	b := &n.caught.pending
	return !b.empty() && time.Since(b.since) >= viewMaxWaits*n.cfg.SyncTimeout
}

// addCaughtUp adds a caught-up message to the view, and shows the view at
// once if it has reached its bound in bytes or time.
func (n *Node) addCaughtUp(body eventlog.Body) {
	v := n.caught
	v.mu.Lock()
	b := &v.pending
	if b.empty() {
		b.since = time.Now()
	}
	switch m := body.(type) {
	case eventlog.Chat:
		if b.counts[m.Origin] == 0 {
			b.order = append(b.order, m.Origin)
			b.bytes += viewOriginOverhead
		}
		b.counts[m.Origin]++
		lines := append(b.lines[m.Origin], m)
		b.bytes += chatBytes(m)
		if len(lines) > maxCaughtUpShown {
			b.bytes -= chatBytes(lines[0])
			lines = lines[1:]
		}
		b.lines[m.Origin] = lines
	case eventlog.Nick:
		b.nicks = append(b.nicks, m)
		b.bytes += len(m.Name) + len(m.Sig) + viewLineOverhead
	case eventlog.Sealed, eventlog.Ack:
		b.sealed++
	}
	if b.bytes < maxCaughtUpBytes && !n.viewOverdueLocked() {
		v.mu.Unlock()
		return
	}
	batch := v.pending
	v.pending = newViewBatch()
	v.mu.Unlock()
	n.showBatch(batch)
}

// showBatch shows one batch of caught-up messages and, if there were any,
// tells the peers so with HAVE.
func (n *Node) showBatch(b viewBatch) {
	if b.empty() {
		return
	}
	v := n.caught
	v.showMu.Lock()
	shown, rest := b.order, 0
	if len(shown) > maxCaughtUpAuthorsShown {
		// Authors cost a peer nothing: a block per author would let
		// one fill the screen. The rest are counted in one line.
		shown = shown[:maxCaughtUpAuthorsShown]
		for _, origin := range b.order[maxCaughtUpAuthorsShown:] {
			rest += b.counts[origin]
		}
	}
	for _, origin := range shown {
		lines, count := b.lines[origin], b.counts[origin]
		// Two peers' answers may interleave: show each author in order.
		slices.SortFunc(lines, func(a, b eventlog.Chat) int { return cmp.Compare(a.OriginSeq, b.OriginSeq) })
		name := n.label(origin, lines[len(lines)-1].Name)
		what := "messages"
		if count == 1 {
			what = "message"
		}
		n.display.ShowSystem(fmt.Sprintf("%d missed %s from %s", count, what, name))
		if count > len(lines) {
			n.display.ShowSystem(fmt.Sprintf("showing the last %d; /history has them all", len(lines)))
		}
		for _, c := range lines {
			n.display.ShowChat(c.OriginTime, n.label(c.Origin, c.Name), c.Text)
		}
	}
	if rest > 0 {
		n.display.ShowSystem(fmt.Sprintf("and %d missed messages from %d more authors; /history has them all", rest, len(b.order)-len(shown)))
	}
	nicks := b.nicks
	if len(nicks) > maxCaughtUpAuthorsShown {
		nicks = nicks[len(nicks)-maxCaughtUpAuthorsShown:]
	}
	for _, nick := range nicks {
		n.renamed(nick)
	}
	v.showMu.Unlock()
	if frame, err := wire.EncodeFrame(wire.FrameHave, struct{}{}, n.cfg.MaxFrame); err == nil {
		n.broadcast(frame, nil)
	}
}
