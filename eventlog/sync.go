package eventlog

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Range is an inclusive range of origin sequence numbers.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// OriginState is what the log holds of one origin's signed messages: every
// origin seq up to Watermark, and past it up to Max all but Missing.
type OriginState struct {
	Origin    NodeID
	Watermark uint64
	Max       uint64
	// Missing lists the holes between Watermark and Max, oldest first.
	// When the walk that finds them is cut short, the last range runs to
	// Max, so a peer answering it may send some messages twice but never
	// skips one.
	Missing []Range
}

// Limits of SyncState's walk: holes are rare, but a hostile origin could
// leave many, and finding them must stay cheap.
const (
	maxHoleWalk   = 10000
	maxHoleRanges = 32
)

// SyncState describes, for every origin the log holds messages of, which
// origin seqs it has: what a node tells a peer so the peer can send what
// is missing.
func (l *Log) SyncState() ([]OriginState, error) {
	var out []OriginState
	err := l.st.View(func(tx *bolt.Tx) error {
		origins := tx.Bucket(bucketOrigins)
		p := txProjection{tx: tx}
		return origins.ForEachBucket(func(k []byte) error {
			var id NodeID
			copy(id[:], k)
			s, err := originState(p, origins.Bucket(k), id)
			out = append(out, s)
			return err
		})
	})
	return out, err
}

// SyncStateOf is SyncState for the given origins only, in their order; an
// origin the log holds nothing of is left out.
func (l *Log) SyncStateOf(ids []NodeID) ([]OriginState, error) {
	out := make([]OriginState, 0, len(ids))
	err := l.st.View(func(tx *bolt.Tx) error {
		origins := tx.Bucket(bucketOrigins)
		p := txProjection{tx: tx}
		for _, id := range ids {
			b := origins.Bucket(id[:])
			if b == nil {
				continue
			}
			s, err := originState(p, b, id)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// originState reads what the origin index bucket b holds of origin id.
func originState(p txProjection, b *bolt.Bucket, id NodeID) (OriginState, error) {
	s := OriginState{Origin: id}
	mark, err := p.watermark(id)
	if err != nil {
		return s, err
	}
	s.Watermark = mark
	c := b.Cursor()
	last, _ := c.Last()
	if len(last) == 8 {
		s.Max = binary.BigEndian.Uint64(last)
	}
	s.Missing = holes(c, mark, s.Max)
	return s, nil
}

// holes walks the origin index from mark+1 to max and returns the gaps.
func holes(c *bolt.Cursor, mark, max uint64) []Range {
	if max <= mark {
		return nil
	}
	var out []Range
	expect := mark + 1
	walked := 0
	for k, _ := c.Seek(seqKey(expect)); k != nil; k, _ = c.Next() {
		seq := binary.BigEndian.Uint64(k)
		if seq > expect {
			if len(out) == maxHoleRanges-1 {
				break
			}
			out = append(out, Range{From: expect, To: seq - 1})
		}
		expect = seq + 1
		if walked++; walked == maxHoleWalk || seq >= max {
			break
		}
	}
	if expect <= max {
		out = append(out, Range{From: expect, To: max})
	}
	return out
}

// Get returns the event stored under seq.
func (l *Log) Get(seq uint64) (Event, bool, error) {
	var (
		e     Event
		found bool
	)
	err := l.st.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEvents).Get(seqKey(seq))
		if v == nil {
			return nil
		}
		var err error
		e, err = Decode(seq, v)
		found = err == nil
		return err
	})
	return e, found, err
}

// Holds reports, for each message, whether the log holds its (origin,
// origin seq) already: one read transaction for a whole batch, so a
// receiver can drop the copies a mesh delivers before checking their
// signatures.
func (l *Log) Holds(msgs []Signed) ([]bool, error) {
	out := make([]bool, len(msgs))
	if len(msgs) == 0 {
		return out, nil
	}
	err := l.st.View(func(tx *bolt.Tx) error {
		// Most of msgs are a few origins' newest lines: with each one's
		// highest seq at hand, a line above it is not held, found without
		// a lookup.
		p := txProjection{tx: tx, origins: originCache{}}
		for i, m := range msgs {
			origin, seq := m.OriginKey()
			held, err := p.hasOrigin(origin, seq)
			if err != nil {
				return err
			}
			out[i] = held
		}
		return nil
	})
	return out, err
}
