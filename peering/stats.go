package peering

import "sync/atomic"

// Stats counts what a node moved since it was created. Flooding pays for
// delivery with duplicates: each node hears a line from about as many
// peers as it has, and these counters make that price measurable.
type Stats struct {
	// Received is the live CHAT and NICK frames that arrived.
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
}

// nodeStats is the live form of Stats, updated without a lock.
type nodeStats struct {
	received, duplicates, caughtUp, caughtUpDuplicates, relayed, sent atomic.Uint64
}

// Stats returns the counters so far.
func (n *Node) Stats() Stats {
	s := &n.stats
	return Stats{
		Received:           s.received.Load(),
		Duplicates:         s.duplicates.Load(),
		CaughtUp:           s.caughtUp.Load(),
		CaughtUpDuplicates: s.caughtUpDuplicates.Load(),
		Relayed:            s.relayed.Load(),
		Sent:               s.sent.Load(),
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
