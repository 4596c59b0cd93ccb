package eventlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// Report is the outcome of Verify.
type Report struct {
	Events   uint64
	Peers    int
	Origins  int
	Problems []string // empty when the log and its projection agree
}

// maxProblems bounds the report: past it, more differences say nothing new.
const maxProblems = 50

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	} else if len(r.Problems) == maxProblems {
		r.Problems = append(r.Problems, "... more differences not shown")
	}
}

// Verify folds the whole log again from sequence 1, in memory, and
// compares the result with the stored projection and indexes, all in one
// read transaction so a running writer cannot make them disagree. It also
// runs bbolt's own page check. Differences are listed in the report; the
// error is for failures to read at all.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	var rep Report
	if err := l.st.Check(); err != nil {
		return rep, err
	}
	err := l.st.View(func(tx *bolt.Tx) error {
		mem := newMemProjection()
		chatSeqs := map[uint64]bool{}
		c := tx.Bucket(store.BucketEvents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			seq := binary.BigEndian.Uint64(k)
			if seq != rep.Events+1 {
				rep.problem("sequence gap: event %d follows %d", seq, rep.Events)
			}
			rep.Events = seq
			e, err := Decode(seq, v)
			if err != nil {
				rep.problem("%v", err)
				continue
			}
			if s, ok := e.Body.(Signed); ok {
				origin, oseq := s.OriginKey()
				if dup, _ := mem.hasOrigin(origin, oseq); dup {
					rep.problem("event %d repeats %s message %d", seq, origin.Short(), oseq)
				}
			}
			if e.Body.Type() == TypeChat {
				chatSeqs[seq] = true
			}
			if err := fold(mem, l.self, e); err != nil {
				rep.problem("event %d: %v", seq, err)
			}
		}
		comparePeers(tx, mem, &rep)
		compareWatermarks(tx, mem, &rep)
		compareOrigins(tx, mem, &rep)
		compareChats(tx, chatSeqs, &rep)
		rep.Peers = len(mem.peers)
		rep.Origins = len(mem.watermarks)
		return nil
	})
	return rep, err
}

func comparePeers(tx *bolt.Tx, mem *memProjection, rep *Report) {
	stored := map[NodeID]bool{}
	_ = tx.Bucket(store.BucketPeers).ForEach(func(k, v []byte) error {
		var id NodeID
		copy(id[:], k)
		stored[id] = true
		want, ok := mem.peers[id]
		if !ok {
			rep.problem("peer %s is stored but no event makes it", id.Short())
			return nil
		}
		// Compare the rows as they read back: the same row may be
		// stored with U+FFFD escaped or not.
		got, err := decodePeer(v)
		if err != nil {
			rep.problem("peer %s: %v", id.Short(), err)
			return nil
		}
		gotBytes, _ := encodePeer(got)
		wantBytes, _ := encodePeer(want)
		if !bytes.Equal(gotBytes, wantBytes) {
			rep.problem("peer %s differs:\n  stored:  %s\n  rebuilt: %s", id.Short(), v, wantBytes)
		}
		return nil
	})
	for _, id := range sortedIDs(mem.peers) {
		if !stored[id] {
			rep.problem("peer %s is missing from the stored table", id.Short())
		}
	}
}

func compareWatermarks(tx *bolt.Tx, mem *memProjection, rep *Report) {
	stored := map[NodeID]bool{}
	_ = tx.Bucket(store.BucketWatermarks).ForEach(func(k, v []byte) error {
		var id NodeID
		copy(id[:], k)
		stored[id] = true
		if len(v) != 8 {
			rep.problem("watermark of %s is malformed", id.Short())
			return nil
		}
		if got, want := binary.BigEndian.Uint64(v), mem.watermarks[id]; got != want {
			rep.problem("watermark of %s is %d, the log says %d", id.Short(), got, want)
		}
		return nil
	})
	for _, id := range sortedIDs(mem.watermarks) {
		if !stored[id] {
			rep.problem("watermark of %s is missing", id.Short())
		}
	}
}

func compareOrigins(tx *bolt.Tx, mem *memProjection, rep *Report) {
	var count int
	_ = tx.Bucket(store.BucketOrigins).ForEachBucket(func(k []byte) error {
		var id NodeID
		copy(id[:], k)
		return tx.Bucket(store.BucketOrigins).Bucket(k).ForEach(func(ok, ov []byte) error {
			count++
			oseq := binary.BigEndian.Uint64(ok)
			seq, _ := binary.Uvarint(ov)
			if want, found := mem.origins[originKey{id, oseq}]; !found || want != seq {
				rep.problem("origin index %s/%d points at %d, the log says %d", id.Short(), oseq, seq, want)
			}
			return nil
		})
	})
	if count != len(mem.origins) {
		rep.problem("origin index has %d entries, the log has %d signed messages", count, len(mem.origins))
	}
}

func compareChats(tx *bolt.Tx, chatSeqs map[uint64]bool, rep *Report) {
	var count int
	malformed := forEachChatSeq(tx.Bucket(store.BucketChats), func(seq uint64) {
		count++
		if !chatSeqs[seq] {
			rep.problem("chat index names event %d, which is not a CHAT", seq)
		}
	})
	if malformed > 0 {
		rep.problem("chat index has %d malformed blocks", malformed)
	}
	if count != len(chatSeqs) {
		rep.problem("chat index has %d entries, the log has %d CHAT events", count, len(chatSeqs))
	}
}

func sortedIDs[V any](m map[NodeID]V) []NodeID {
	ids := make([]NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Less(ids[j]) })
	return ids
}
