package peering

import (
	"errors"
	"sync/atomic"
)

// Stats counts what a node moved since it was created. Flooding pays for
// delivery with duplicates: each node hears a line from about as many
// peers as it has, and these counters make that price measurable.
type Stats struct {
	// Received is the live signed messages (CHAT, NICK, SEALED, ACK)
	// that arrived.
	Received uint64
	// Duplicates is how many of those the log already held; they were
	// dropped, neither shown nor relayed.
	Duplicates uint64
	// CaughtUp is the messages that arrived in answer to SYNC.
	CaughtUp uint64
	// CaughtUpDuplicates is how many of those the log already held.
	CaughtUpDuplicates uint64
	// Relayed is the frames queued to peers to pass on others' messages.
	Relayed uint64
	// Sent is the frames queued to peers for this node's own messages.
	Sent uint64
	// Forked is the messages refused because their origin signed
	// another history (eventlog.Result.Forked); the peers that brought them
	// are not penalized.
	Forked uint64

	// DialFailures is the dials and handshakes that failed.
	DialFailures uint64
	// PenaltiesFlood is the penalties for going over the chat budget;
	// PenaltiesViolation those for breaking the protocol.
	PenaltiesFlood, PenaltiesViolation uint64

	// The rest is a snapshot, not a count.

	// Connected is the peers with an authenticated connection; Open the
	// TCP connections in any state, handshakes included; Dialing the
	// dials under way.
	Connected, Open, Dialing int
	// SendQueued is the frames waiting in the peers' send queues, live
	// and catch-up together.
	SendQueued int
}

// nodeStats is the live form of Stats, updated without a lock.
type nodeStats struct {
	received, duplicates, caughtUp, caughtUpDuplicates, relayed, sent, forked atomic.Uint64
	dialFailures, penaltiesFlood, penaltiesViolation                          atomic.Uint64
}

// Stats returns the counters so far and the state of the connections now.
func (n *Node) Stats() Stats {
	s := &n.stats
	out := Stats{
		Received:           s.received.Load(),
		Duplicates:         s.duplicates.Load(),
		CaughtUp:           s.caughtUp.Load(),
		CaughtUpDuplicates: s.caughtUpDuplicates.Load(),
		Relayed:            s.relayed.Load(),
		Sent:               s.sent.Load(),
		Forked:             s.forked.Load(),
		DialFailures:       s.dialFailures.Load(),
		PenaltiesFlood:     s.penaltiesFlood.Load(),
		PenaltiesViolation: s.penaltiesViolation.Load(),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out.Connected, out.Open, out.Dialing = len(n.conns), n.open, n.dialing
	for _, c := range n.conns {
		out.SendQueued += len(c.sendq) + len(c.catchq)
	}
	return out
}

// countPenalty counts one penalty by its reason.
func (s *nodeStats) countPenalty(why error) {
	if errors.Is(why, errViolation) {
		s.penaltiesViolation.Add(1)
	} else {
		s.penaltiesFlood.Add(1)
	}
}

// countIn counts one stored-or-dropped message of a batch.
func (s *nodeStats) countIn(live, duplicate bool) {
	switch {
	case live:
		s.received.Add(1)
		if duplicate {
			s.duplicates.Add(1)
		}
	default:
		s.caughtUp.Add(1)
		if duplicate {
			s.caughtUpDuplicates.Add(1)
		}
	}
}
