package eventlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
)

// OriginSummary is one origin's entry in the sorted summary a node
// reconciles with its peers: the origin, the highest origin seq held, and
// a digest of its whole OriginState. Two logs whose summaries of an origin
// have the same Digest hold the same messages of it, as far as SYNC can
// tell them apart.
type OriginSummary struct {
	Origin NodeID
	Max    uint64
	Digest [16]byte
}

// Digest is the digest of what s says the log holds.
func (s OriginState) Digest() [16]byte {
	h := sha256.New()
	var buf [8]byte
	h.Write(s.Origin[:])
	for _, v := range []uint64{s.Watermark, s.Max, uint64(len(s.Missing))} {
		binary.BigEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	for _, r := range s.Missing {
		binary.BigEndian.PutUint64(buf[:], r.From)
		h.Write(buf[:])
		binary.BigEndian.PutUint64(buf[:], r.To)
		h.Write(buf[:])
	}
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// summaries keeps the origin summaries in memory, sorted by origin. They
// are derived from the origin index, not stored: the first call walks the
// whole index (see docs/SCALING.md for its cost at 100,000 authors), and
// later calls re-read only the origins that commits touched since.
type summaries struct {
	mu    sync.Mutex // held while refreshing
	snap  []OriginSummary
	built bool

	dirtyMu sync.Mutex
	dirty   map[NodeID]struct{}
}

// touch notes origins whose messages a commit changed.
func (s *summaries) touch(ids []NodeID) {
	if len(ids) == 0 {
		return
	}
	s.dirtyMu.Lock()
	defer s.dirtyMu.Unlock()
	if s.dirty == nil {
		s.dirty = map[NodeID]struct{}{}
	}
	for _, id := range ids {
		s.dirty[id] = struct{}{}
	}
}

func (s *summaries) takeDirty() []NodeID {
	s.dirtyMu.Lock()
	defer s.dirtyMu.Unlock()
	out := make([]NodeID, 0, len(s.dirty))
	for id := range s.dirty {
		out = append(out, id)
	}
	s.dirty = nil
	slices.SortFunc(out, func(a, b NodeID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Summaries returns one summary per origin the log holds messages of,
// sorted by origin. The slice is shared and must not be modified; a later
// call returns a new one if anything changed. Its cost is the origins
// changed since the last call, plus a copy of the slice when there are any.
func (l *Log) Summaries() ([]OriginSummary, error) {
	s := &l.summaries
	s.mu.Lock()
	defer s.mu.Unlock()
	// Taken before reading, so a commit racing with this read is read
	// again next time rather than missed.
	dirty := s.takeDirty()
	if !s.built {
		states, err := l.SyncState()
		if err != nil {
			s.touch(dirty)
			return nil, err
		}
		all := make([]OriginSummary, len(states))
		for i, st := range states {
			all[i] = OriginSummary{Origin: st.Origin, Max: st.Max, Digest: st.Digest()}
		}
		s.snap, s.built = all, true
		return s.snap, nil
	}
	if len(dirty) == 0 {
		return s.snap, nil
	}
	states, err := l.SyncStateOf(dirty)
	if err != nil {
		s.touch(dirty)
		return nil, err
	}
	merged := make([]OriginSummary, 0, len(s.snap)+len(states))
	i := 0
	for _, st := range states {
		for i < len(s.snap) && bytes.Compare(s.snap[i].Origin[:], st.Origin[:]) < 0 {
			merged = append(merged, s.snap[i])
			i++
		}
		if i < len(s.snap) && s.snap[i].Origin == st.Origin {
			i++
		}
		merged = append(merged, OriginSummary{Origin: st.Origin, Max: st.Max, Digest: st.Digest()})
	}
	merged = append(merged, s.snap[i:]...)
	s.snap = merged
	return s.snap, nil
}
