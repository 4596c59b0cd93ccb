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

// Verify folds the log again, in memory, and compares the result with the
// stored projection and indexes; it also runs bbolt's own page check.
// Differences are listed in the report; the error is for failures to read
// at all (a panic inside bbolt on a damaged page included).
//
// A running log is verified on a snapshot: one short read transaction
// copies the file, and the fold then reads the copy in chunks, so appends
// go on meanwhile and the result is of one consistent moment. A read-only
// log has no writer beside it and is read in place, also in chunks.
//
// Where retention pruned network events, the fold starts from the
// checkpoint of the peer table taken at the pruned prefix; the signed
// messages of that prefix are all still there and rebuild the origin
// index and watermarks from sequence 1.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	src := l.st
	if !l.st.ReadOnly() {
		snap, err := l.st.Snapshot()
		if err != nil {
			return Report{}, err
		}
		defer snap.Close()
		src = snap
	}
	if err := src.Check(); err != nil {
		return Report{}, err
	}
	return verifyStore(ctx, src, l.self)
}

func verifyStore(ctx context.Context, src *store.Store, self NodeID) (Report, error) {
	var rep Report
	mem := newMemProjection()
	var cut uint64
	err := src.View(func(tx *bolt.Tx) error {
		var err error
		cut, err = readCheckpoint(tx, mem, &rep)
		return err
	})
	if err != nil {
		return rep, err
	}
	chatSeqs := map[uint64]bool{}
	var last uint64
	for from := uint64(1); ; {
		type raw struct {
			seq uint64
			e   Event
			err error
		}
		var chunk []raw
		err := src.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketEvents).Cursor()
			for k, v := c.Seek(seqKey(from)); k != nil && len(chunk) < scanChunk; k, v = c.Next() {
				if len(k) != 8 {
					rep.problem("event key of %d bytes: %x", len(k), k)
					continue
				}
				seq := binary.BigEndian.Uint64(k)
				e, err := Decode(seq, v)
				chunk = append(chunk, raw{seq, e, err})
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
		for _, r := range chunk {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			// Below the checkpoint, pruned network events leave gaps.
			if r.seq != last+1 && r.seq > cut+1 {
				rep.problem("sequence gap: event %d follows %d", r.seq, last)
			}
			last = r.seq
			rep.Events++
			if r.err != nil {
				rep.problem("%v", r.err)
				continue
			}
			e := r.e
			if s, ok := e.Body.(Signed); ok {
				origin, oseq := s.OriginKey()
				if dup, _ := mem.hasOrigin(origin, oseq); dup {
					rep.problem("event %d repeats %s message %d", e.Seq, origin.Short(), oseq)
				}
			}
			if e.Body.Type() == TypeChat {
				chatSeqs[e.Seq] = true
			}
			if e.Seq <= cut {
				// The checkpoint holds this event's effect on the peer
				// table; only the origin index is rebuilt from it.
				if s, ok := e.Body.(Signed); ok {
					origin, oseq := s.OriginKey()
					if err := foldOrigin(mem, origin, oseq, e.Seq); err != nil {
						rep.problem("event %d: %v", e.Seq, err)
					}
				}
				continue
			}
			if err := fold(mem, self, e); err != nil {
				rep.problem("event %d: %v", e.Seq, err)
			}
		}
		if len(chunk) < scanChunk {
			break
		}
		from = chunk[len(chunk)-1].seq + 1
	}
	err = src.View(func(tx *bolt.Tx) error {
		comparePeers(tx, mem, &rep)
		compareHearsay(tx, mem, &rep)
		compareWatermarks(tx, mem, &rep)
		compareOrigins(tx, mem, &rep)
		compareChats(tx, chatSeqs, &rep)
		return nil
	})
	rep.Peers = len(mem.peers)
	rep.Origins = len(mem.watermarks)
	return rep, err
}

func comparePeers(tx *bolt.Tx, mem *memProjection, rep *Report) {
	stored := map[NodeID]bool{}
	_ = tx.Bucket(bucketPeers).ForEach(func(k, v []byte) error {
		var id NodeID
		if len(k) != len(id) {
			rep.problem("peer table key of %d bytes: %x", len(k), k)
			return nil
		}
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

// compareHearsay checks the hearsay index against the rows: one entry per
// hearsay row, at the seq it was last heard.
func compareHearsay(tx *bolt.Tx, mem *memProjection, rep *Report) {
	var count int
	_ = tx.Bucket(bucketHearsay).ForEach(func(k, _ []byte) error {
		id, ok := heardID(k)
		if !ok {
			rep.problem("hearsay index key of %d bytes: %x", len(k), k)
			return nil
		}
		count++
		if seq := binary.BigEndian.Uint64(k); mem.peers[id].Heard != seq {
			rep.problem("hearsay index has %s heard at %d, the log says %d", id.Short(), seq, mem.peers[id].Heard)
		}
		return nil
	})
	want := 0
	for _, p := range mem.peers {
		if p.Hearsay() {
			want++
		}
	}
	if count != want {
		rep.problem("hearsay index has %d entries, the log has %d hearsay rows", count, want)
	}
}

func compareWatermarks(tx *bolt.Tx, mem *memProjection, rep *Report) {
	stored := map[NodeID]bool{}
	_ = tx.Bucket(bucketWatermarks).ForEach(func(k, v []byte) error {
		var id NodeID
		if len(k) != len(id) {
			rep.problem("watermark key of %d bytes: %x", len(k), k)
			return nil
		}
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
	_ = tx.Bucket(bucketOrigins).ForEachBucket(func(k []byte) error {
		var id NodeID
		if len(k) != len(id) {
			rep.problem("origin index key of %d bytes: %x", len(k), k)
			return nil
		}
		copy(id[:], k)
		return tx.Bucket(bucketOrigins).Bucket(k).ForEach(func(ok, ov []byte) error {
			count++
			seq, n := binary.Uvarint(ov)
			if len(ok) != 8 || n <= 0 {
				rep.problem("origin index row of %s is malformed: %x -> %x", id.Short(), ok, ov)
				return nil
			}
			oseq := binary.BigEndian.Uint64(ok)
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
	malformed := forEachChatSeq(tx.Bucket(bucketChats), func(seq uint64) {
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
