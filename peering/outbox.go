package peering

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
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
		close(n.outbox)
	}
	n.outboxMu.Unlock()
	<-n.outboxDone
}

// outboxLoop stores, broadcasts and shows the node's own messages, a batch
// per commit. It signs each batch (eventlog.Log.Sign) while a goroutine of
// its own commits, sends and shows the batch before, so that the log's
// writer, which would otherwise sign inside its transaction, never waits
// for a signature; the order of the lines is kept.
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
	for first := range n.outbox {
		batch := drain(first, n.outbox, maxIngestBatch)
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
