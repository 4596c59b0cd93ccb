package peering

import (
	"context"
	"sync"

	"github.com/p2pchat/p2pchat/peering/wire"
	"golang.org/x/sync/semaphore"
)

// Memory of the queues between a connection's loops. Each queue is
// bounded per connection, but a stranger with fresh keys can fill every
// slot of the node, and every one of its queues: 31 connections of 4 MiB
// of received lines held back by their new-author waits made 143 MiB of
// heap, and 31 slow readers of a catch-up answer 107 MiB. So past a part
// of its own, a queue takes its bytes from a room the whole node shares,
// only if there is some; when there is none, the queue's producer waits
// for its own part to drain, as it waits at the connection's bound. A
// peer that fills the node's room slows only itself: every other
// connection still has its own part.
const (
	// ingestFreeBytes is each connection's own part of its queue of
	// received lines waiting for the log, ingestRoomBytes the room of
	// all connections together past it.
	ingestFreeBytes = 128 << 10
	ingestRoomBytes = 4 << 20
	// catchFreeBytes is each connection's own part of its queue of
	// catch-up frames waiting to be sent (two frames of the largest
	// size), catchRoomBytes the room of all connections past it.
	catchFreeBytes = 2 * wire.DefaultMaxFrame
	catchRoomBytes = 2 << 20
)

// queueRoom is the room, in bytes, of one connection's queue: at most its
// bound, of which the first free bytes are the connection's own and the
// rest come from the node's shared room. Bytes given back go to the
// node's room first, so that it is whole again as soon as the queue holds
// no more than its own part.
type queueRoom struct {
	bound *semaphore.Weighted // the connection's
	own   *semaphore.Weighted // the connection's own part
	node  *semaphore.Weighted // shared by every connection

	mu     sync.Mutex
	shared int64 // bytes held of node
}

// newQueueRoom makes a queue's room of bound bytes, free of them its own,
// the rest from node. No take may ask for more than free.
func newQueueRoom(bound, free int64, node *semaphore.Weighted) *queueRoom {
	return &queueRoom{
		bound: semaphore.NewWeighted(bound),
		own:   semaphore.NewWeighted(min(free, bound)),
		node:  node,
	}
}

// take waits for room for n bytes: within the connection's bound, from
// its own part or else, if it has room, from the node's; when neither
// has, until the connection's own part has drained enough. It fails only
// when ctx ends, and then holds nothing.
func (r *queueRoom) take(ctx context.Context, n int64) error {
	if err := r.bound.Acquire(ctx, n); err != nil {
		return err
	}
	if r.own.TryAcquire(n) {
		return nil
	}
	if r.node.TryAcquire(n) {
		r.mu.Lock()
		r.shared += n
		r.mu.Unlock()
		return nil
	}
	if err := r.own.Acquire(ctx, n); err != nil {
		r.bound.Release(n)
		return err
	}
	return nil
}

// give gives back n bytes taken, to the node's room first.
func (r *queueRoom) give(n int64) {
	r.mu.Lock()
	shared := min(n, r.shared)
	r.shared -= shared
	r.mu.Unlock()
	if shared > 0 {
		r.node.Release(shared)
	}
	if n > shared {
		r.own.Release(n - shared)
	}
	r.bound.Release(n)
}
