package peering

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"golang.org/x/time/rate"
)

// A node's own history forks when two copies of its data directory write
// under the same numbers: a backup restored while no peer that holds the
// node's newest lines answered within Config.FirstCatchupWait, or a copy
// run elsewhere. A peer that holds the other copy's line at a seq drops
// this node's line there (it holds that origin and seq) and refuses the
// chained line after it (it names another predecessor) as a fork; the
// lines after those go through. Nothing tells the author: its lines stay
// on its screen as if they had gone out.
//
// Catch-up cannot show it: it compares which numbers each side holds, not
// what is under them. So a peer that refuses a line of the sender's own as
// a fork, or is sent one that differs from the line it holds under that
// number, answers with the lines it holds that conflict with it, as
// CATCHUP. A line under the node's own ID that conflicts with one it
// holds, and carries a valid signature of its own key, is proof; the node
// then names the lines of its own that did not reach that peer, once each.
// It does not send them again: while another copy still runs, every line
// sent again would collide again, and peers that hold this copy's lines
// would show them twice.

// ownForkSettle is how long the note waits after the first proof, for
// the rest of one exchange (the walk back is paced) to come in.
const ownForkSettle = time.Second

// The lines a node shows a peer that forked, per connection: enough for
// the peer to learn it, far below any chat budget, so that an honest node
// is never refused for showing them, however many lines collide.
const (
	forkReplyBurst = 16
	forkReplyRate  = rate.Limit(1) // a second
)

// maxOwnForkQuoted bounds the lines quoted in one note.
const maxOwnForkQuoted = 10

// ownForks is what the node found of its forked history this run.
type ownForks struct {
	mu      sync.Mutex
	named   map[uint64]bool                       // own seqs found lost
	pending map[eventlog.NodeID][]eventlog.Signed // found, not yet shown, by peer
	found   chan struct{}                         // pokes forkNotesLoop
}

// checkCopies looks at copies of lines the node holds under the same
// origin and seq that ingest drops as held: caught-up copies of its own
// lines, and copies of the peer's own lines. Another line, signed by
// its origin, is proof that origin forked: if it is this node, it names
// its lost lines; if it is the peer, the peer is shown the line this node
// holds there, so that it learns the same. Its error is for what cannot go
// on (reading the log) or a violation (a forged copy).
func (n *Node) checkCopies(from *conn, copies []eventlog.Signed) error {
	others, err := n.log.HeldOthers(copies)
	if err != nil {
		return fmt.Errorf("read origin index: %w", err)
	}
	var theirs, ours []eventlog.Signed
	for i, held := range others {
		if held != nil {
			theirs, ours = append(theirs, copies[i]), append(ours, held)
		}
	}
	if len(theirs) == 0 {
		return nil
	}
	// Only the origin's key signs its lines, and every node checks a line
	// before it passes it on: a copy whose signature fails was forged or
	// altered by the peer.
	var proofs []eventlog.Signed
	for k, err := range eventlog.VerifyBatch(theirs) {
		if err != nil {
			origin, seq := theirs[k].OriginKey()
			return violation(fmt.Errorf("another copy of held line origin %s seq %d: %w", origin.Short(), seq, err))
		}
		if origin, _ := theirs[k].OriginKey(); origin == n.self {
			proofs = append(proofs, theirs[k])
		} else {
			from.showHeld(ours[k])
		}
	}
	return n.namesLostOwnLines(from, proofs)
}

// forkSeen looks at a line the log refused as a fork, checked as its
// origin's: one of this node's own names its lost lines; one of the
// peer's own is answered with the lines this node holds that it
// conflicts with, so that the peer learns its history forked.
func (n *Node) forkSeen(from *conn, s eventlog.Signed) error {
	switch origin, _ := s.OriginKey(); origin {
	case n.self:
		return n.namesLostOwnLines(from, []eventlog.Signed{s})
	case from.id:
		held, err := n.heldConflicting(s)
		if err != nil {
			return err
		}
		for _, h := range held {
			from.showHeld(h)
		}
	}
	return nil
}

// showHeld sends the peer a line of its own that this node holds, as
// CATCHUP: the peer checks it as any copy of a line it holds. Past
// forkReplies, or to a peer too old to read it, nothing.
func (c *conn) showHeld(s eventlog.Signed) {
	if c.version < wire.MinVersion(s) || !c.forkReplies.Allow() {
		return
	}
	frame, err := wire.CatchupFrame(s, c.n.cfg.MaxFrame)
	if err != nil {
		c.n.logger.Error().Err(err).Msg("encode CATCHUP")
		return
	}
	c.send(frame)
}

// heldConflicting returns the lines of s's origin the log holds that
// conflict with s (conflicting).
func (n *Node) heldConflicting(s eventlog.Signed) ([]eventlog.Signed, error) {
	origin, seq := s.OriginKey()
	around, err := n.log.ByOrigin(origin, max(seq, 2)-2, 3)
	if err != nil {
		return nil, fmt.Errorf("read origin index: %w", err)
	}
	return conflicting(s, around), nil
}

// conflicting returns the lines of around (events of s's origin, in
// order) that a node holding s refuses: the line under s's seq if it is
// another, the one before if s names another predecessor, and the chained
// one after if it names another predecessor than s.
func conflicting(s eventlog.Signed, around []eventlog.Event) []eventlog.Signed {
	_, seq := s.OriginKey()
	hash := eventlog.ChainHash(s)
	var out []eventlog.Signed
	for _, e := range around {
		m, ok := e.Body.(eventlog.Signed)
		if !ok {
			continue
		}
		_, mseq := m.OriginKey()
		switch mseq {
		case seq - 1:
			if eventlog.Chained(s) && !bytes.Equal(eventlog.PrevOf(s), eventlog.ChainHash(m)) {
				out = append(out, m)
			}
		case seq:
			if !bytes.Equal(eventlog.ChainHash(m), hash) {
				out = append(out, m)
			}
		case seq + 1:
			if eventlog.Chained(m) && !bytes.Equal(eventlog.PrevOf(m), hash) {
				out = append(out, m)
			}
		}
	}
	return out
}

// namesLostOwnLines takes proofs, lines of this node's own that from
// holds and that conflict with lines it holds (conflicting): those lines
// did not reach from. Each is logged and queued for a note once per run
// (forkNotesLoop). Where a proof names another predecessor than the
// node's, from is shown that predecessor, so that it answers with its own
// line there if it holds another: the two walk back, a line a step, to
// where their histories part.
func (n *Node) namesLostOwnLines(from *conn, proofs []eventlog.Signed) error {
	if len(proofs) == 0 {
		return nil
	}
	n.ownForks.mu.Lock()
	defer n.ownForks.mu.Unlock()
	var lost []eventlog.Signed
	for _, p := range proofs {
		_, seq := p.OriginKey()
		held, err := n.heldConflicting(p)
		if err != nil {
			return err
		}
		for _, m := range held {
			_, mseq := m.OriginKey()
			if n.ownForks.named[mseq] {
				continue
			}
			n.ownForks.named[mseq] = true
			lost = append(lost, m)
			if mseq+1 == seq {
				from.showHeld(m)
			}
		}
	}
	if len(lost) == 0 {
		return nil
	}
	seqs := make([]string, len(lost))
	for i, s := range lost {
		_, seq := s.OriginKey()
		seqs[i] = strconv.FormatUint(seq, 10)
	}
	n.logger.Warn().Str("peer", from.id.Short()).Strs("seqs", seqs).Msg("own history forked: a peer holds another copy's lines under these own seqs; they did not reach it")
	n.ownForks.pending[from.id] = append(n.ownForks.pending[from.id], lost...)
	select {
	case n.ownForks.found <- struct{}{}:
	default:
	}
	return nil
}

// forkNotesLoop shows what namesLostOwnLines found: a moment after the
// first proof of an exchange, and then at most once every
// Config.ForkNoteEvery, each peer's lost lines in one note.
func (n *Node) forkNotesLoop(ctx context.Context) {
	defer n.wg.Done()
	notes := rate.NewLimiter(rate.Every(n.cfg.ForkNoteEvery), 1)
	settle := time.NewTimer(0)
	<-settle.C
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.ownForks.found:
		}
		settle.Reset(ownForkSettle)
		select {
		case <-ctx.Done():
			settle.Stop()
			return
		case <-settle.C:
		}
		if err := notes.Wait(ctx); err != nil {
			return
		}
		n.ownForks.mu.Lock()
		pending := n.ownForks.pending
		n.ownForks.pending = map[eventlog.NodeID][]eventlog.Signed{}
		n.ownForks.mu.Unlock()
		for id, lost := range pending {
			slices.SortFunc(lost, func(a, b eventlog.Signed) int {
				_, as := a.OriginKey()
				_, bs := b.OriginKey()
				return cmp.Compare(as, bs)
			})
			n.display.ShowSystem(ownForkNote(n.peerLabel(id), lost))
		}
	}
}

// ownForkNote says which lines did not reach peer, quoting a few.
func ownForkNote(peer string, lost []eventlog.Signed) string {
	var quoted []string
	others := 0
	for _, s := range lost {
		c, ok := s.(eventlog.Chat)
		if !ok || len(quoted) == maxOwnForkQuoted {
			others++
			continue
		}
		quoted = append(quoted, strconv.Quote(shortened(c.Text)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of your messages did not reach %s: it holds other messages under their numbers, written by another copy of this node's data directory (a restored backup, or a copy run elsewhere). Send again what matters", len(lost), peer)
	if len(quoted) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(quoted, ", "))
		if others > 0 {
			fmt.Fprintf(&b, " and %d more", others)
		}
	}
	return b.String()
}
