package peering

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Private messages travel through the mesh like chat lines. /msg seals the
// text to the recipient's key (eventlog.NewSealed) and the outbox loop
// appends it as the next message of this node's own sequence, signed, and
// broadcasts it. Every node verifies, stores and relays it as it does a
// CHAT, and catch-up fills it in for whoever was away, so it reaches the
// recipient through any chain of peers, with either end offline at times.
// Relays can read who wrote to whom and when, never the text.
//
// The recipient shows it and answers with an ACK, a signed message of its
// own that travels back the same way; the sender shows the message as
// delivered when the ACK arrives. Both are identified by (origin, origin
// seq) like any signed message, so copies and replays are dropped as
// duplicates, and each counts against its author's bounds (MaxAhead,
// MaxPerOrigin) like a chat line.

// Msg seals text to the peer ref names and sends it through the mesh.
// It returns once the message is queued, like Say.
func (n *Node) Msg(ctx context.Context, ref, text string) error {
	if err := eventlog.CheckText(text); err != nil {
		return err
	}
	id, err := n.resolveOther(ref, "message")
	if err != nil {
		return err
	}
	if n.isBanned(id) {
		return fmt.Errorf("%s is banned", ref)
	}
	s, err := eventlog.NewSealed(n.cfg.Key, id, n.Name(), text)
	if err != nil {
		return err
	}
	return n.enqueue(ctx, s)
}

// aloneNoteEvery spaces the notes that a message waits for a peer.
const aloneNoteEvery = 30 * time.Second

// sent shows this node's own private message once it is stored, and what
// happens to it if no peer is there to take it now.
func (n *Node) sent(s eventlog.Sealed) {
	text, err := s.Open(n.cfg.Key)
	if err != nil {
		n.logger.Error().Err(err).Msg("open own private message")
		return
	}
	n.display.ShowPrivateTo(s.OriginTime, n.peerLabel(s.To), n.label(n.self, s.Name), text)
	n.mu.Lock()
	alone := len(n.conns) == 0
	n.mu.Unlock()
	// Once in a while, not under every line of a paste.
	if alone && time.Since(n.aloneNoted) > aloneNoteEvery {
		n.aloneNoted = time.Now()
		n.display.ShowSystem("no peer is connected; the message goes out when one is")
	}
}

// receivePrivate shows a stored private message to this node and
// acknowledges it, and shows an acknowledgement of one from this node.
// Everything else passes through here untouched: relays store and forward
// what is not theirs, unread.
func (n *Node) receivePrivate(ctx context.Context, body eventlog.Body) {
	switch b := body.(type) {
	case eventlog.Sealed:
		if b.To != n.self {
			return
		}
		text, err := b.Open(n.cfg.Key)
		if err != nil {
			// Signed by its sender, so kept in its sequence, but
			// never shown: a box that does not open is no message.
			n.limitedLog("sealed "+b.Origin.String(), warnLevel).Err(err).Str("origin", b.Origin.Short()).Uint64("seq", b.OriginSeq).Msg("private message cannot be opened")
			return
		}
		n.display.ShowPrivate(b.OriginTime, n.label(b.Origin, b.Name), text)
		if err := n.enqueue(ctx, eventlog.Ack{To: b.Origin, Ref: b.OriginSeq}); err != nil {
			n.logger.Warn().Err(err).Str("origin", b.Origin.Short()).Msg("acknowledge private message")
		}
	case eventlog.Ack:
		if b.To == n.self {
			n.delivered(b)
		}
	}
}

// ackWindow is how far back from its newest event at start a node looks
// for private messages to it that it never acknowledged.
const ackWindow = 4096

// ackMissed acknowledges the private messages to this node among the
// ackWindow events up to upTo, the newest when the node started, that no
// Ack of its own answers. A message is stored before its Ack is queued,
// and the Ack stored after it, so a stop in between (a crash, or a message
// that came while the node was shutting down) left it unacknowledged for
// good: the message is a copy of a held one from then on, and its sender
// never saw it delivered. It is among the last events stored before such
// a stop, so the window finds it unless more than ackWindow events came
// after it.
//
// It waits for the first catch-up, which brings back the node's own
// lines if its directory is an old copy: an Ack the node sent after the
// copy was made counts. Messages stored after upTo are this run's, which
// ingest acknowledges.
func (n *Node) ackMissed(ctx context.Context, upTo uint64) {
	defer n.wg.Done()
	select {
	case <-n.caughtUpOnce:
	case <-ctx.Done():
		return
	}
	last, err := n.log.LastSeq()
	if err != nil {
		n.logger.Warn().Err(err).Msg("look for unacknowledged private messages")
		return
	}
	type key struct {
		origin eventlog.NodeID
		seq    uint64
	}
	var maybe []eventlog.Sealed
	acked := map[key]bool{}
	err = n.log.Scan(ctx, max(upTo, ackWindow)-ackWindow+1, func(e eventlog.Event) error {
		switch b := e.Body.(type) {
		case eventlog.Sealed:
			if b.To == n.self && e.Seq <= upTo {
				maybe = append(maybe, b)
			}
		case eventlog.Ack:
			if b.Origin == n.self {
				acked[key{b.To, b.Ref}] = true
			}
		}
		// Past upTo only Acks matter, and only if there is something
		// to look for.
		if e.Seq >= last || (e.Seq >= upTo && len(maybe) == 0) {
			return errScanned
		}
		return nil
	})
	if err != nil && !errors.Is(err, errScanned) {
		if ctx.Err() == nil {
			n.logger.Warn().Err(err).Msg("look for unacknowledged private messages")
		}
		return
	}
	sent := 0
	for _, s := range maybe {
		if acked[key{s.Origin, s.OriginSeq}] {
			continue
		}
		if _, err := s.Open(n.cfg.Key); err != nil {
			continue // never shown, so never acknowledged
		}
		if err := n.enqueue(ctx, eventlog.Ack{To: s.Origin, Ref: s.OriginSeq}); err != nil {
			return
		}
		sent++
		n.logger.Info().Str("origin", s.Origin.Short()).Uint64("seq", s.OriginSeq).Msg("private message acknowledged after a stop")
	}
	n.logger.Debug().Int("acknowledged", sent).Msg("looked for private messages a stop left unacknowledged")
}

// errScanned ends ackMissed's scan.
var errScanned = errors.New("scanned")

// maxQuoted bounds the text of a message quoted in a system line.
const maxQuoted = 40

// shortened is text cut to maxQuoted characters, for quoting.
func shortened(text string) string {
	if r := []rune(text); len(r) > maxQuoted {
		return string(r[:maxQuoted]) + "…"
	}
	return text
}

// delivered shows that the recipient of one of this node's private
// messages has it.
func (n *Node) delivered(a eventlog.Ack) {
	events, err := n.log.ByOrigin(n.self, a.Ref-1, 1)
	if err != nil {
		n.logger.Error().Err(err).Msg("read own private message")
		return
	}
	if len(events) != 1 {
		return
	}
	s, ok := events[0].Body.(eventlog.Sealed)
	if !ok || s.OriginSeq != a.Ref || s.To != a.Origin {
		return // acknowledges something else: nothing to show
	}
	text, err := s.Open(n.cfg.Key)
	if err != nil {
		return
	}
	n.display.ShowSystem(fmt.Sprintf("delivered to %s: %s", n.peerLabel(a.Origin), shortened(text)))
}

// peerLabel is how a peer is shown by its ID alone: under the name the
// peer table has for it.
func (n *Node) peerLabel(id eventlog.NodeID) string {
	p, ok, err := n.log.Peer(id)
	if err != nil || !ok || p.Name == "" {
		return id.Short()
	}
	return n.label(id, p.Name)
}
