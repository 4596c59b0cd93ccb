package peering

import (
	"cmp"
	"context"
	"errors"
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
	// speaksForSelf marks the end of an answer that brought what the
	// peer holds of this node's own lines (askedState.speaksForSelf).
	speaksForSelf bool
	// timedOut marks an answer given up on at its deadline: an end of
	// the answer (synced) that the view has been told of already.
	timedOut bool
	size     int // bytes taken from the connection's ingest room
	// ownErr is why the line's own signature failed, for a line held
	// back for a voucher (pendingChain): it is not checked again.
	ownErr error
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
	if err := c.ingestRoom.take(c.done, int64(m.size)); err != nil {
		return c.closeErr
	}
	select {
	case c.ingest <- m:
		return nil
	case <-c.closing:
		c.ingestRoom.give(int64(m.size))
		return c.closeErr
	}
}

// ingestLoop appends what the read loop decoded, in batches: whatever is
// waiting goes into one Append, one fsync, however many messages a burst
// or a catch-up brings. It runs until the read loop closes c.ingest, and
// so also stores what arrived just before a goodbye.
func (c *conn) ingestLoop(ctx context.Context) {
	defer c.wg.Done()
	limit := maxIngestBatch
	if c.n.cfg.ingestBatch > 0 {
		limit = c.n.cfg.ingestBatch
	}
	for {
		first, ok := c.nextInbound()
		if !ok {
			return
		}
		batch := drain(first, c.ingest, limit)
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
		c.ingestRoom.give(int64(size))
		if err != nil {
			if ctx.Err() == nil {
				c.n.limitedLog("peer "+c.id.String(), warnLevel).Err(err).Str("peer", c.id.Short()).Msg("dropping peer")
			}
			c.n.punish(c.id, err)
			c.close(err)
			// The read loop is told by c.closing; drain until it
			// closes the queue.
			for m := range c.ingest {
				c.ingestRoom.give(int64(m.size))
			}
			return
		}
	}
}

// nextInbound waits for the next message, or for this node's answer
// deadline (catchup.checkDeadline), which ends the answer as SYNCED would
// for what was held back of it (pendingChain); what is queued before it
// goes first. It reports false once the read loop closed the queue.
func (c *conn) nextInbound() (inbound, bool) {
	select {
	case m, ok := <-c.ingest:
		return m, ok
	default:
	}
	select {
	case m, ok := <-c.ingest:
		return m, ok
	case <-c.cu.timedOut:
		return inbound{synced: true, timedOut: true}, true
	}
}

// ingest verifies, appends, shows and relays one batch. Its error ends
// the connection; a violation (a forged or malformed message) also
// penalizes the peer.
func (n *Node) ingest(ctx context.Context, from *conn, batch []inbound) error {
	// Lines held back from earlier batches (pendingChain) go first: the
	// ones of origins this batch brings more of, so that a successor can
	// vouch for them, or all of them at the end of an answer, for the
	// last word on them.
	batch = from.chain.take(batch)
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
	var copies []eventlog.Signed // of lines whose origin forked, maybe (ownfork.go)
	for i, j := 0, 0; i < len(batch); i++ {
		m := batch[i]
		if !m.synced {
			if held[j] {
				n.stats.countIn(m.live, true)
				if origin, _ := m.body.OriginKey(); (origin == n.self && !m.live) || origin == from.id {
					copies = append(copies, m.body)
				}
				j++
				continue
			}
			j++
		}
		fresh = append(fresh, m)
	}
	if len(copies) > 0 {
		if err := n.checkCopies(from, copies); err != nil {
			return err
		}
	}
	if err := from.chargeNewAuthors(fresh); err != nil {
		return err
	}
	// A message that fails its check is refused alone: the good ones of
	// the batch are stored, and then the peer that sent it is dropped
	// (the error returned at the end).
	fresh, vouchers, refused, err := n.verifyBatch(from, fresh)
	if err != nil {
		return err
	}
	bodies := make([]eventlog.Body, 0, len(fresh))
	vouchedBy := make([]int, 0, len(fresh))
	at := make([]int, len(fresh)) // fresh index -> bodies index, or -1
	kept := make([]inbound, 0, len(fresh))
	for i, m := range fresh {
		at[i] = -1
		if m.synced {
			kept = append(kept, m)
			continue
		}
		if origin, _ := m.body.OriginKey(); n.isBanned(origin) {
			continue // neither stored, shown nor relayed
		}
		at[i] = len(bodies)
		bodies = append(bodies, m.body)
		kept = append(kept, m)
	}
	for i := range fresh {
		if at[i] < 0 {
			continue
		}
		// A voucher has its line's origin, so neither or both are
		// banned.
		v := -1
		if j := vouchers[i]; j >= 0 {
			v = at[j]
		}
		vouchedBy = append(vouchedBy, v)
	}
	results, err := n.appendVouched(ctx, bodies, vouchedBy)
	if err != nil {
		return err
	}
	i := 0
	for _, m := range kept {
		if m.synced {
			if !m.timedOut {
				n.caughtUp(from)
				if m.speaksForSelf {
					n.firstCatchupEnded()
				}
			}
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
		if res.Forked {
			s := res.Body.(eventlog.Signed)
			n.forked(from, s)
			if err := n.forkSeen(from, s); err != nil {
				return err
			}
			continue
		}
		if res.Unvouched {
			// Its voucher was refused here (a fork, or past this
			// node's bounds), and its own signature fails: not the
			// peer's doing, which may have taken both.
			origin, seq := res.Body.(eventlog.Signed).OriginKey()
			n.logger.Debug().Str("origin", origin.Short()).Uint64("seq", seq).Msg("line whose voucher was refused; not stored")
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
		// What goes on is the canonical encoding of what was verified,
		// never the bytes received: padding a peer added dies here. It
		// goes on before it is shown: the next peers need not wait for
		// this node's screen.
		relayed, err := n.broadcastSigned(res.Body, from)
		n.stats.relayed.Add(uint64(relayed))
		n.show(res.Body)
		if err != nil {
			return err
		}
	}
	return refused
}

// appendVouched appends bodies (eventlog.Log.AppendVouched), then checks
// the own signatures of those refused only because their voucher was not
// written, and appends those that hold: a line that holds alone must not
// be lost because the line after it is refused.
func (n *Node) appendVouched(ctx context.Context, bodies []eventlog.Body, vouchedBy []int) ([]eventlog.Result, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("append: %w", err)
	}
	results, err := n.log.AppendVouched(ctx, bodies, vouchedBy)
	if err != nil {
		return nil, fail(err)
	}
	var again []int
	var check []eventlog.Signed
	for i, res := range results {
		if res.Unvouched {
			again = append(again, i)
			check = append(check, bodies[i].(eventlog.Signed))
		}
	}
	if len(again) == 0 {
		return results, nil
	}
	var good []eventlog.Body
	var goodAt []int
	for k, err := range eventlog.VerifyBatch(check) {
		if err == nil {
			good, goodAt = append(good, check[k]), append(goodAt, again[k])
		}
	}
	if len(good) == 0 {
		return results, nil
	}
	more, err := n.log.Append(ctx, good...)
	if err != nil {
		return nil, fail(err)
	}
	for k, res := range more {
		results[goodAt[k]] = res
	}
	return results, nil
}

// forked notes a message refused because its origin signed two histories:
// its key did this, not the peer, which may hold the other branch by the
// same rules as this node. Refused, logged, not penalized.
func (n *Node) forked(from *conn, s eventlog.Signed) {
	origin, seq := s.OriginKey()
	n.stats.forked.Add(1)
	n.limitedLog("fork "+origin.String(), warnLevel).Str("origin", origin.Short()).Uint64("seq", seq).Str("peer", from.id.Short()).Msg("origin forked its chain; message refused")
}

// verifyBatch checks the signatures of a batch and returns what holds, in
// order, with the violation of the first message that does not, or nil. A
// bad message is refused alone: the good ones around it are kept.
//
// Live lines and caught-up lines are each checked one signature per
// chained run of an origin (eventlog.VerifyChainedOpen): a burst or a
// catch-up brings many lines of few authors, and a run's last signature
// vouches for every line before it. A chained line whose own signature
// fails and that nothing in the batch vouches for is decided as doc.go
// ("Hash chains") says: stored if the log holds the successor that chains
// to it, refused as a fork if the log holds another successor, and
// otherwise held back for the connection's next lines of its origin. A
// caught-up one is refused as the peer's violation when its answer ends
// (SYNCED) without a voucher; a live one, which no answer ends, only when
// a later line of its origin breaks its chain, or at once if the peer is
// its origin, since an honest node never sends a line of its own that it
// did not sign. Its error is for what cannot go on (reading the log).
//
// vouchers[i] is the index in what it returns of the line whose writing
// good[i] depends on (eventlog.VerifyChainedOpen's vouchedBy), or -1.
func (n *Node) verifyBatch(from *conn, batch []inbound) (good []inbound, vouchers []int, refused, err error) {
	var live, caught checking
	synced := -1 // the last end of an answer in the batch
	for i, m := range batch {
		switch {
		case m.synced:
			synced = i
		case m.live:
			live.add(m, i)
		default:
			caught.add(m, i)
		}
	}
	errs := make([]error, len(batch))
	voucher := make([]int, len(batch)) // batch index -> batch index, or -1
	for i := range voucher {
		voucher[i] = -1
	}
	var open []int // batch indexes
	for _, c := range []*checking{&live, &caught} {
		open = c.verify(errs, voucher, open)
	}
	if len(open) > 0 {
		verdict, err := n.openVerdicts(batch, open)
		if err != nil {
			return nil, nil, nil, err
		}
		var hold []inbound
		for _, i := range open {
			m := batch[i]
			origin, _ := m.body.OriginKey()
			switch verdict[openKey{origin, m.live}] {
			case eventlog.Vouched:
				errs[i] = nil
			case eventlog.VouchOther:
				n.forked(from, m.body)
				errs[i] = errForkRefused
			default:
				if (m.live && origin != from.id) || (!m.live && i > synced) {
					m.ownErr = errs[i]
					hold = append(hold, m)
					errs[i] = errHeldBack
				}
				// Else it is refused as the peer's violation, with
				// its own error: the answer it came in has ended
				// without a voucher, or the peer is its origin.
			}
		}
		from.chain.hold(n, from, hold)
	}
	if err := n.askTheLog(from, batch, errs, open); err != nil {
		return nil, nil, nil, err
	}
	good = make([]inbound, 0, len(batch))
	at := make([]int, len(batch)) // batch index -> good index
	for i, m := range batch {
		err := errs[i]
		if err == nil {
			at[i] = len(good)
			good = append(good, m)
			continue
		}
		if refused == nil && err != errHeldBack && err != errForkRefused {
			origin, seq := m.body.OriginKey()
			refused = violation(fmt.Errorf("%s from origin %s seq %d: %w", m.body.Type(), origin.Short(), seq, err))
		}
	}
	vouchers = make([]int, 0, len(good))
	for i := range batch {
		if errs[i] != nil {
			continue
		}
		v := -1
		// A voucher is later in its run: good too, or the line is.
		if j := voucher[i]; j >= 0 && errs[j] == nil {
			v = at[j]
		}
		vouchers = append(vouchers, v)
	}
	return good, vouchers, refused, nil
}

// askTheLog settles the chained lines of batch refused on their own
// signatures that are not open (a later line of their origin in the batch
// does not chain to them) by what the log holds after them: one that the
// log's successor chains to is its origin's, as that successor says (a
// catch-up answer leaves out the lines the node said it holds, and a
// relay's successor may have come another way), and one with another
// successor is a fork. The rest stay refused, the peer's violation.
func (n *Node) askTheLog(from *conn, batch []inbound, errs []error, open []int) error {
	var closed []int
	var lines []eventlog.Signed
	for i, err := range errs {
		if errors.Is(err, eventlog.ErrBadSignature) && eventlog.Chained(batch[i].body) && !slices.Contains(open, i) {
			closed = append(closed, i)
			lines = append(lines, batch[i].body)
		}
	}
	if len(closed) == 0 {
		return nil
	}
	vouches, err := n.log.Vouches(lines)
	if err != nil {
		return fmt.Errorf("read origin index: %w", err)
	}
	for k, i := range closed {
		switch vouches[k] {
		case eventlog.Vouched:
			errs[i] = nil
		case eventlog.VouchOther:
			n.forked(from, batch[i].body)
			errs[i] = errForkRefused
		}
	}
	return nil
}

// checking is one kind of a batch's lines, live or caught up, checked
// together: each kind is cut into its own chained runs, since a peer
// sends a catch-up answer behind its live lines and the two need not
// chain to each other.
type checking struct {
	lines []eventlog.Signed
	at    []int   // index in the batch of each of lines
	known []error // inbound.ownErr of each of lines, or nil if none has one
}

func (c *checking) add(m inbound, at int) {
	if m.ownErr != nil && c.known == nil {
		c.known = make([]error, len(c.lines), cap(c.lines))
	}
	if c.known != nil {
		c.known = append(c.known, m.ownErr)
	}
	c.lines, c.at = append(c.lines, m.body), append(c.at, at)
}

// verify checks c's lines (eventlog.VerifyChainedOpenKnown: a held line's
// own signature is not checked twice), writes each verdict into errs and
// each voucher into voucher, both by batch index, and returns open with
// the batch indexes of the lines a successor not in the batch could still
// vouch for.
func (c *checking) verify(errs []error, voucher, open []int) []int {
	if len(c.lines) == 0 {
		return open
	}
	cerrs, copen, vouchedBy := eventlog.VerifyChainedOpenKnown(c.lines, c.known)
	for k, i := range c.at {
		errs[i] = cerrs[k]
		if j := vouchedBy[k]; j >= 0 {
			voucher[i] = c.at[j]
		}
		if copen[k] {
			open = append(open, i)
		}
	}
	return open
}

// openKey names the open lines of one origin of one kind in a batch: a
// chained suffix, whose newest line is the one the log's successor would
// name.
type openKey struct {
	origin eventlog.NodeID
	live   bool
}

// openVerdicts says, for the open lines of batch at the indexes open, what
// the log holds after the newest of each origin and kind
// (eventlog.Log.Vouches).
func (n *Node) openVerdicts(batch []inbound, open []int) (map[openKey]eventlog.Vouch, error) {
	newest := map[openKey]int{}
	var order []openKey
	for _, i := range open {
		origin, _ := batch[i].body.OriginKey()
		k := openKey{origin, batch[i].live}
		if _, ok := newest[k]; !ok {
			order = append(order, k)
		}
		newest[k] = i
	}
	tips := make([]eventlog.Signed, len(order))
	for j, k := range order {
		tips[j] = batch[newest[k]].body
	}
	vouches, err := n.log.Vouches(tips)
	if err != nil {
		return nil, fmt.Errorf("read origin index: %w", err)
	}
	verdict := make(map[openKey]eventlog.Vouch, len(order))
	for j, k := range order {
		verdict[k] = vouches[j]
	}
	return verdict, nil
}

// Marks of lines verifyBatch neither keeps nor holds against the peer.
var (
	errHeldBack    = errors.New("held back for a voucher")
	errForkRefused = errors.New("refused: the origin forked")
)

// Bounds of the lines a connection holds back for a voucher. An honest
// answer sends each origin's lines together and in order, and an honest
// relay sends a line it took on its successor's word right before that
// successor, so an honest peer has one origin's open lines held at a
// time, and their voucher comes next; these bound what a long run of
// lines without valid signatures of their own, or a hostile peer, can
// make a node keep.
const (
	maxHeldBackLines = maxIngestBatch
	maxHeldBackBytes = 1 << 20
)

// pendingChain is what a connection holds back: chained lines whose own
// signatures fail and that no line received so far vouches for, in the
// order received, and at most one chained suffix per origin and kind,
// live or caught up (a later line of its origin either extends it or ends
// it). Ingest loop only.
type pendingChain struct {
	lines []inbound
	bytes int
}

// take returns batch with the held-back lines it must be checked with in
// front: those of the origins batch brings lines of the same kind of, and
// every caught-up one if batch ends an answer. They leave the pending set;
// verifyBatch holds back again what is still open.
func (p *pendingChain) take(batch []inbound) []inbound {
	if len(p.lines) == 0 {
		return batch
	}
	ended := false
	brings := map[openKey]bool{}
	for _, m := range batch {
		if m.synced {
			ended = true
			continue
		}
		o, _ := m.body.OriginKey()
		brings[openKey{o, m.live}] = true
	}
	var front, rest []inbound
	for _, m := range p.lines {
		if o, _ := m.body.OriginKey(); (ended && !m.live) || brings[openKey{o, m.live}] {
			front = append(front, m)
		} else {
			rest = append(rest, m)
		}
	}
	if len(front) == 0 {
		return batch
	}
	p.lines, p.bytes = rest, 0
	for _, m := range rest {
		p.bytes += m.size
	}
	return append(front, batch...)
}

// hold adds lines to the pending set, dropping the oldest lines past the
// bounds: unvouched as yet, they are neither stored nor held against the
// peer, and a later round brings them again (the log then holds more of
// what follows them).
func (p *pendingChain) hold(n *Node, from *conn, lines []inbound) {
	for _, m := range lines {
		m.charged = false // paid for once, when it came
		p.lines = append(p.lines, m)
		p.bytes += m.size
	}
	dropped := 0
	for len(p.lines) > maxHeldBackLines || (p.bytes > maxHeldBackBytes && len(p.lines) > 1) {
		p.bytes -= p.lines[0].size
		p.lines = p.lines[1:]
		dropped++
	}
	if dropped > 0 {
		n.logger.Debug().Str("peer", from.id.Short()).Int("lines", dropped).Msg("lines without a voucher past the bound; dropped")
	}
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
	n.showViewLocked(len(v.awaiting) == 0 || n.viewOverdueLocked())
}

// showViewLocked, called with n.caught.mu held, releases it and, if due,
// takes the pending batch and shows it outside the lock.
func (n *Node) showViewLocked(due bool) {
	v := n.caught
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
	n.showViewLocked(b.bytes >= maxCaughtUpBytes || n.viewOverdueLocked())
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
	n.broadcastHave()
}

// broadcastHave tells every peer that this node holds lines it may lack
// (wire.FrameHave), so that it asks now rather than at its next interval.
func (n *Node) broadcastHave() {
	if frame, err := wire.EncodeFrame(wire.FrameHave, struct{}{}, n.cfg.MaxFrame); err == nil {
		n.broadcast(frame, nil)
	}
}
