package peering

import (
	"bytes"
	"cmp"
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

// The notes about lost lines on screen: a few at once (the lines of one
// fork come in more than one batch), then one every ownForkNoteEvery. The
// log has every one.
const (
	ownForkNoteBurst = 5
	ownForkNoteEvery = 30 * time.Second
)

// The lines a node shows a peer that forked, per connection: enough for
// the peer to learn it, far below any chat budget, so that an honest node
// is never refused for showing them, however many lines collide.
const (
	forkReplyBurst = 16
	forkReplyRate  = rate.Limit(1) // a second
)

// maxOwnForkQuoted bounds the lines quoted in one note.
const maxOwnForkQuoted = 5

// ownForks is what the node has said about its forked history this run.
type ownForks struct {
	mu    sync.Mutex
	named map[uint64]bool // own seqs already named as lost
	notes *rate.Limiter
}

// checkCopies looks at copies of lines the node holds under the same
// origin and seq that ingest drops as held: caught-up copies of its own
// lines, and copies of the peer's own lines. Another line, signed by
// its origin, is proof that origin forked: if it is this node, it names
// its lost lines; if it is the peer, the peer is shown the line this node
// holds there, so that it learns the same. Its error is for what cannot go
// on (reading the log).
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
	// A copy that is not signed by its origin is a forgery, dropped
	// unseen as any copy of a held line is.
	var proofs []eventlog.Signed
	for k, err := range eventlog.VerifyBatch(theirs) {
		if err != nil {
			continue
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
	origin, seq := s.OriginKey()
	switch origin {
	case n.self:
		return n.namesLostOwnLines(from, []eventlog.Signed{s})
	case from.id:
		around, err := n.log.ByOrigin(origin, max(seq, 2)-2, 3)
		if err != nil {
			return fmt.Errorf("read origin index: %w", err)
		}
		for _, held := range conflicting(s, around) {
			from.showHeld(held)
		}
	}
	return nil
}

// showHeld sends the peer a line of its own that this node holds, as
// CATCHUP: the peer checks it as any copy of a line it holds. Past
// forkReplies, nothing.
func (c *conn) showHeld(s eventlog.Signed) {
	if !c.forkReplies.Allow() {
		return
	}
	frame, err := wire.CatchupFrame(s, c.n.cfg.MaxFrame)
	if err != nil {
		c.n.logger.Error().Err(err).Msg("encode CATCHUP")
		return
	}
	c.send(frame)
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

// namesLostOwnLines tells the person at the keyboard which of their lines
// did not reach from, which holds proofs, lines of this node's own that
// conflict with those it holds (conflicting), each once per run.
func (n *Node) namesLostOwnLines(from *conn, proofs []eventlog.Signed) error {
	if len(proofs) == 0 {
		return nil
	}
	n.ownForks.mu.Lock()
	defer n.ownForks.mu.Unlock()
	if n.ownForks.named == nil {
		n.ownForks.named = map[uint64]bool{}
		n.ownForks.notes = rate.NewLimiter(rate.Every(ownForkNoteEvery), ownForkNoteBurst)
	}
	var lost []eventlog.Signed
	for _, p := range proofs {
		_, seq := p.OriginKey()
		around, err := n.log.ByOrigin(n.self, max(seq, 2)-2, 3)
		if err != nil {
			return fmt.Errorf("read own lines: %w", err)
		}
		for _, m := range conflicting(p, around) {
			if _, mseq := m.OriginKey(); !n.ownForks.named[mseq] {
				n.ownForks.named[mseq] = true
				lost = append(lost, m)
			}
		}
	}
	if len(lost) == 0 {
		return nil
	}
	slices.SortFunc(lost, func(a, b eventlog.Signed) int {
		_, as := a.OriginKey()
		_, bs := b.OriginKey()
		return cmp.Compare(as, bs)
	})
	seqs := make([]string, len(lost))
	for i, s := range lost {
		_, seq := s.OriginKey()
		seqs[i] = strconv.FormatUint(seq, 10)
	}
	n.logger.Warn().Str("peer", from.id.Short()).Strs("seqs", seqs).Msg("own history forked: a peer holds another copy's lines under these own seqs; they did not reach it")
	if n.ownForks.notes.Allow() {
		n.display.ShowSystem(ownForkNote(n.peerLabel(from.id), lost))
	}
	return nil
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
		text := c.Text
		if r := []rune(text); len(r) > maxDeliveredShown {
			text = string(r[:maxDeliveredShown]) + "…"
		}
		quoted = append(quoted, strconv.Quote(text))
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
