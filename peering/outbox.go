package peering

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"golang.org/x/time/rate"
)

// outboxSize bounds the own lines waiting to be stored; past it Say waits,
// which slows the input down instead of dropping anything.
const outboxSize = 4096

// ErrStopped is returned for a line given to a node that is shutting down.
var ErrStopped = errors.New("node is shutting down")

// Say queues a line from this node. The outbox loop signs and appends it
// (durably), and only then broadcasts and shows it. Lines keep their order.
// Say returns once the line is queued, so pasted text is stored in a few
// group commits instead of one fsync per line.
func (n *Node) Say(ctx context.Context, text string) error {
	if err := eventlog.CheckText(text); err != nil {
		return err
	}
	return n.enqueue(ctx, eventlog.Chat{Text: text})
}

func (n *Node) enqueue(ctx context.Context, body eventlog.Body) error {
	n.outboxMu.RLock()
	defer n.outboxMu.RUnlock()
	if n.outboxClosed {
		return ErrStopped
	}
	select {
	case n.outbox <- body:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeOutbox stops Say and waits until the loop has stored and sent every
// line queued before.
func (n *Node) closeOutbox() {
	n.outboxMu.Lock()
	if !n.outboxClosed {
		n.outboxClosed = true
		close(n.outboxStop)
		close(n.outbox)
	}
	n.outboxMu.Unlock()
	<-n.outboxDone
}

// outboxLoop stores, broadcasts and shows the node's own messages, a batch
// per commit, no faster than peers take them (pacer). It signs each batch
// (eventlog.Log.Sign) while a goroutine of its own commits, sends and
// shows the batch before, so that the log's writer, which would otherwise
// sign inside its transaction, never waits for a signature; the order of
// the lines is kept.
func (n *Node) outboxLoop(ctx context.Context) {
	defer n.wg.Done()
	defer close(n.outboxDone)
	signed := make(chan []eventlog.Body, 1)
	published := make(chan struct{})
	var renaming atomic.Int32 // batches with a rename, signed and not yet published
	go func() {
		defer close(published)
		for batch := range signed {
			if err := n.publish(ctx, batch); err != nil {
				n.logger.Error().Err(err).Msg("store own lines")
				n.display.ShowSystem(fmt.Sprintf("error: %d line(s) not stored, not sent: %v", len(batch), err))
			}
			if hasRename(batch) {
				renaming.Add(-1)
			}
		}
	}()
	defer func() {
		close(signed)
		<-published
	}()
	var name string
	pace := newPacer(n.cfg.ChatRate, n.cfg.ChatBurst)
	for first := range n.outbox {
		n.holdOwnLines()
		batch := drain(first, n.outbox, pace.batch)
		n.paced(pace, len(batch))
		// Each line carries the name in force when it was typed: a
		// rename applies to the lines after it, also those signed while
		// it is being stored.
		if renaming.Load() == 0 {
			name = n.Name()
		}
		name = named(batch, name)
		if hasRename(batch) {
			renaming.Add(1)
		}
		if ahead, err := n.log.Sign(batch); err == nil {
			batch = ahead
		} else {
			// Left for the log's writer to sign.
			n.logger.Warn().Err(err).Msg("sign own lines ahead")
		}
		signed <- batch
	}
}

// Own lines at start, and a restored data directory.
//
// A node numbers its own lines after the newest of its own it holds. A
// node started from an old copy of its data directory (a restored backup)
// lacks its newest lines, which its peers hold. A line it numbers before
// it has caught up on them takes a number its peers hold already, and
// they drop it as held; the next one names a predecessor they do not
// hold, a fork they refuse; and the node refuses their copies of its own
// lines as forks of its own, so it never learns them. So at start the
// outbox holds the node's own lines until a catch-up with a peer that
// holds some of them ends, and numbers them after whatever that brought.
// A peer that holds none (a newcomer, or one that missed them) could not
// tell; nor could one that holds them only because this node just passed
// them on, so until the hold ends, the node's answers leave its own lines
// out (answerSync), and tell the peers once they go (HAVE). A node that
// holds none of its own lines waits for a round with any peer; one that
// knows no peer sends at once; one whose peers do not answer waits at
// most Config.FirstCatchupWait.

// awaitFirstCatchup starts the wait for the first catch-up, in Run, once
// the peers to dial are known, and returns what stops its timer.
func (n *Node) awaitFirstCatchup() (stop func()) {
	n.mu.Lock()
	alone := len(n.targets) == 0
	n.mu.Unlock()
	if alone {
		n.firstCatchupEnded()
		return func() {}
	}
	timer := time.AfterFunc(n.cfg.FirstCatchupWait, n.firstCatchupEnded)
	return func() { timer.Stop() }
}

// firstCatchupEnded lets the node's own lines go: a round of its catch-up
// with a peer that holds its lines ended with what the peer had (SYNCED)
// or with nothing to ask (catchup.speaksForSelf), or a round was given up
// on; or the wait is over.
func (n *Node) firstCatchupEnded() {
	n.firstCatchup.Do(func() {
		close(n.caughtUpOnce)
		if n.ownLeftOut.Load() {
			n.broadcastHave()
		}
	})
}

// holdingOwnLines reports whether the node's own lines are still held at
// start (holdOwnLines).
func (n *Node) holdingOwnLines() bool {
	select {
	case <-n.caughtUpOnce:
		return false
	default:
		return true
	}
}

// holdOwnLines waits, at start, until firstCatchupEnded, or until the
// outbox closes (what is queued is then stored as it is), and says why
// the user's line does not show yet.
func (n *Node) holdOwnLines() {
	select {
	case <-n.caughtUpOnce:
		return
	default:
	}
	n.display.ShowSystem(fmt.Sprintf("catching up with peers before your lines go out (at most %v)", n.cfg.FirstCatchupWait))
	select {
	case <-n.caughtUpOnce:
	case <-n.outboxStop:
	}
}

// pacer keeps the node's own lines within the chat budget its peers
// grant it (Config.ChatRate after Config.ChatBurst, this node's own
// budget standing for theirs): past it, a peer's read loop waits for the
// budget, and one kept waiting longer than Config.FloodGrace penalizes
// this node as a flood. A paste longer than the burst is sent at a share
// of the rate instead, and Say waits once the outbox is full.
//
// It keeps below the budget by a margin: a peer also counts this node's
// other frames (PEERS, SYNC, HAVE) and the lines it relays, and a line
// sent the moment the budget allows may arrive a moment before it does.
// Batches stay at most a quarter of the burst, so that what goes out at
// once never outruns the peer's bucket.
type pacer struct {
	lim    *rate.Limiter
	batch  int       // the most lines committed and sent at once
	noted  time.Time // when the user was last told of the pace
	slowed bool      // the pace held the last batch back
}

// pacedShare is the share of the peers' chat rate a paste is sent at.
const pacedShare = 0.9

func newPacer(perSec, burst int) *pacer {
	return &pacer{
		lim:   rate.NewLimiter(rate.Limit(pacedShare*float64(perSec)), burst),
		batch: min(maxIngestBatch, max(1, burst/4)),
	}
}

// pacedNote is how often, at most, the user is told that a paste is paced.
const pacedNote = 10 * time.Second

// paced waits until p allows lines more of the node's own messages, or
// until the outbox closes: at shutdown what is queued goes at once. The
// user is told when a paste starts to be held back.
func (n *Node) paced(p *pacer, lines int) {
	waited := false
	defer func() { p.slowed = waited }()
	for lines > 0 {
		k := min(lines, p.lim.Burst())
		lines -= k
		d := p.lim.ReserveN(time.Now(), k).Delay()
		if d < minBudgetWait {
			continue
		}
		if !p.slowed && !waited && time.Since(p.noted) > pacedNote {
			p.noted = time.Now()
			n.display.ShowSystem(fmt.Sprintf("long paste: sending %d lines a second, as fast as peers take them; the rest waits", int(p.lim.Limit())))
		}
		waited = true
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-n.outboxStop:
			t.Stop()
			return
		}
	}
}

// named gives each line and private message of batch the name in force
// when it was typed, name before the batch's first rename, and returns
// the name in force after the batch.
func named(batch []eventlog.Body, name string) string {
	for i, b := range batch {
		switch b := b.(type) {
		case eventlog.Chat:
			b.Name = name
			batch[i] = b
		case eventlog.Sealed:
			b.Name = name
			batch[i] = b
		case eventlog.Nick:
			name = b.Name
		}
	}
	return name
}

func hasRename(batch []eventlog.Body) bool {
	for _, b := range batch {
		if _, ok := b.(eventlog.Nick); ok {
			return true
		}
	}
	return false
}

func (n *Node) publish(ctx context.Context, batch []eventlog.Body) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	results, err := n.log.AppendSigned(ctx, batch)
	if err != nil {
		return err
	}
	for _, res := range results {
		// A private message is shown before it goes out, so that the
		// notice of its delivery can never come first.
		if b, ok := res.Body.(eventlog.Sealed); ok {
			n.sent(b)
		}
		sent, err := n.broadcastSigned(res.Body, nil)
		if err != nil {
			return err
		}
		n.stats.sent.Add(uint64(sent))
		// Shown once sent: the peers need not wait for this node's
		// screen, which can be a slow terminal.
		switch b := res.Body.(type) {
		case eventlog.Chat:
			n.display.ShowChat(b.OriginTime, n.label(n.self, b.Name), b.Text)
		case eventlog.Nick:
			n.mu.Lock()
			n.name = b.Name
			n.mu.Unlock()
			n.display.ShowSystem("you are now known as " + b.Name)
		}
	}
	return nil
}

// drain returns first and whatever else ch holds right now, up to max
// items: the batch one commit takes. It never waits, so a lone item is
// committed at once.
func drain[T any](first T, ch <-chan T, max int) []T {
	batch := []T{first}
	for len(batch) < max {
		select {
		case v, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, v)
		default:
			return batch
		}
	}
	return batch
}
