package eventlog

import (
	bolt "go.etcd.io/bbolt"
)

// LookupPeers returns the rows of the peer table for those of ids it
// holds, in one read transaction: what a PEERS frame needs, without
// reading the whole table. (The table's bound is the log's business:
// Append enforces it, so callers need no count of rows.)
func (l *Log) LookupPeers(ids []NodeID) (map[NodeID]Peer, error) {
	out := make(map[NodeID]Peer, len(ids))
	err := l.st.View(func(tx *bolt.Tx) error {
		p := txProjection{tx: tx}
		for _, id := range ids {
			row, ok, err := p.peer(id)
			if err != nil {
				return err
			}
			if ok {
				out[id] = row
			}
		}
		return nil
	})
	return out, err
}

// KnownOrigins reports, for each of ids, whether the log holds any
// message of that origin.
func (l *Log) KnownOrigins(ids []NodeID) ([]bool, error) {
	out := make([]bool, len(ids))
	err := l.st.View(func(tx *bolt.Tx) error {
		origins := tx.Bucket(bucketOrigins)
		for i, id := range ids {
			out[i] = origins.Bucket(id[:]) != nil
		}
		return nil
	})
	return out, err
}
