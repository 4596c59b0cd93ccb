package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Peer is one row of the peer table: everything the log says about a node.
// It is a projection of the log, never written any other way.
type Peer struct {
	ID              NodeID    `json:"id"`
	Name            string    `json:"name"`
	Addrs           []string  `json:"addrs"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
	LastConnect     time.Time `json:"last_connect,omitzero"`
	LastDisconnect  time.Time `json:"last_disconnect,omitzero"`
	DialFailures    int       `json:"dial_failures"`
	LastDialFailure time.Time `json:"last_dial_failure,omitzero"`
	Banned          bool      `json:"banned"`
	BannedUntil     time.Time `json:"banned_until,omitzero"`
	BanReason       string    `json:"ban_reason,omitempty"`
	// NickSeq is the origin seq of the rename Name came from, so a
	// rename caught up late does not undo a newer one.
	NickSeq uint64 `json:"nick_seq,omitempty"`
	// Outbox holds the local seqs of private messages to this peer not
	// yet acknowledged, oldest first.
	Outbox []uint64 `json:"outbox,omitempty"`
	// PrivateRef is the highest sender seq of a private message from this
	// peer stored here; a lower one is a redelivery.
	PrivateRef uint64 `json:"private_ref,omitempty"`
	// Heard is, for a row that only hearsay made, the local seq of the
	// last PEERS event that named it (or of the DIAL_FAILED that made
	// it); 0 for a row this node knows first hand: one with a JOIN,
	// CONNECT or DISCONNECT of its own, or any other event about it
	// (rename, ban, private message). Only rows with Heard set may be
	// evicted from a full table, least recently heard first.
	Heard uint64 `json:"heard,omitempty"`
}

// Hearsay reports whether only hearsay made the row: it may be evicted.
func (p Peer) Hearsay() bool { return p.Heard != 0 }

// MaxOutbox bounds the undelivered private messages to one peer.
const MaxOutbox = 1000

// BannedAt reports whether the peer is refused at time now.
func (p Peer) BannedAt(now time.Time) bool {
	return p.Banned && (p.BannedUntil.IsZero() || now.Before(p.BannedUntil))
}

// projection is where fold writes: the bbolt buckets on the append path,
// plain maps when verify rebuilds from scratch.
type projection interface {
	peer(id NodeID) (Peer, bool, error)
	putPeer(p Peer) error
	// deletePeer removes a row, which exists, and its hearsay index entry.
	deletePeer(r Peer) error
	// reindexHeard moves a row's hearsay index entry from old to heard
	// (0: none).
	reindexHeard(id NodeID, old, heard uint64) error
	watermark(origin NodeID) (uint64, error)
	putWatermark(origin NodeID, seq uint64) error
	hasOrigin(origin NodeID, seq uint64) (bool, error)
	putOrigin(origin NodeID, originSeq, seq uint64) error
}

// fold applies one event to the projection. It is the only code that
// changes the projection: Append calls it inside the transaction that
// stores the event, and Verify calls it to rebuild from sequence 1, so the
// two cannot drift apart.
func fold(p projection, self NodeID, e Event) error {
	switch b := e.Body.(type) {
	case Join:
		return updatePeer(p, self, b.ID, e.Time, func(r *Peer) {
			r.Name = b.Name
			r.Addrs = MergeAddrs(b.Addrs, r.Addrs)
			r.LastSeen = e.Time
		})
	case Peers:
		for _, id := range b.Evicted {
			r, ok, err := p.peer(id)
			if err != nil {
				return err
			}
			// The log evicts only hearsay rows; anything else in the
			// list is damage, never a reason to forget a known peer.
			if !ok || !r.Hearsay() {
				return fmt.Errorf("fold: PEERS evicts %s, which is not a hearsay row", id.Short())
			}
			if err := p.deletePeer(r); err != nil {
				return err
			}
		}
		for _, info := range b.Peers {
			err := updateHeard(p, self, info.ID, e, true, func(r *Peer) {
				if r.Name == "" {
					r.Name = info.Name
				}
				// Known addresses first: hearsay must not push out
				// addresses the peer gave us itself.
				r.Addrs = MergeAddrs(r.Addrs, info.Addrs)
			})
			if err != nil {
				return err
			}
		}
		return nil
	case Connect:
		return updatePeer(p, self, b.ID, e.Time, func(r *Peer) {
			r.LastConnect, r.LastSeen = e.Time, e.Time
			r.DialFailures = 0
			if !b.Inbound && b.Addr != "" {
				r.Addrs = MergeAddrs([]string{b.Addr}, r.Addrs)
			}
		})
	case Disconnect:
		return updatePeer(p, self, b.ID, e.Time, func(r *Peer) {
			r.LastDisconnect, r.LastSeen = e.Time, e.Time
		})
	case DialFailed:
		// A failed dial is no sign the node exists: the row stays
		// hearsay, and one it makes is hearsay too.
		return updateHeard(p, self, b.ID, e, false, func(r *Peer) {
			r.DialFailures++
			r.LastDialFailure = e.Time
		})
	case Chat:
		return foldOrigin(p, b.Origin, b.OriginSeq, e.Seq)
	case Sealed:
		return foldOrigin(p, b.Origin, b.OriginSeq, e.Seq)
	case Ack:
		return foldOrigin(p, b.Origin, b.OriginSeq, e.Seq)
	case Nick:
		if err := foldOrigin(p, b.Origin, b.OriginSeq, e.Seq); err != nil {
			return err
		}
		return updatePeer(p, self, b.Origin, e.Time, func(r *Peer) {
			if b.OriginSeq > r.NickSeq {
				r.Name, r.NickSeq = b.Name, b.OriginSeq
			}
		})
	case Ban:
		return updatePeer(p, self, b.ID, e.Time, func(r *Peer) {
			r.Banned, r.BannedUntil, r.BanReason = true, b.Until, b.Reason
		})
	case Unban:
		return updatePeer(p, self, b.ID, e.Time, func(r *Peer) {
			r.Banned, r.BannedUntil, r.BanReason = false, time.Time{}, ""
		})
	case Private:
		if b.From == self {
			return updatePeer(p, self, b.To, e.Time, func(r *Peer) {
				if len(r.Outbox) < MaxOutbox {
					r.Outbox = append(r.Outbox, e.Seq)
				}
			})
		}
		return updatePeer(p, self, b.From, e.Time, func(r *Peer) {
			r.PrivateRef = max(r.PrivateRef, b.Ref)
		})
	case Delivered:
		return updatePeer(p, self, b.To, e.Time, func(r *Peer) {
			r.Outbox = slices.DeleteFunc(r.Outbox, func(seq uint64) bool { return seq == b.Seq })
			if len(r.Outbox) == 0 {
				r.Outbox = nil
			}
		})
	default:
		return fmt.Errorf("fold: unknown event body %T", e.Body)
	}
}

// updatePeer loads (or starts) the row of id, lets change edit it and
// stores it, as known first hand (no longer hearsay). The node itself
// never gets a row.
func updatePeer(p projection, self, id NodeID, now time.Time, change func(*Peer)) error {
	return upsertPeer(p, self, id, now, func(r *Peer, _ bool) {
		change(r)
		r.Heard = 0
	})
}

// updateHeard is updatePeer for hearsay (PEERS, DIAL_FAILED): a row it
// starts is hearsay, heard at e; an existing hearsay row is heard again at
// e if refresh is set; a row known first hand stays so.
func updateHeard(p projection, self, id NodeID, e Event, refresh bool, change func(*Peer)) error {
	return upsertPeer(p, self, id, e.Time, func(r *Peer, fresh bool) {
		change(r)
		if fresh || (refresh && r.Hearsay()) {
			r.Heard = e.Seq
		}
	})
}

func upsertPeer(p projection, self, id NodeID, now time.Time, change func(r *Peer, fresh bool)) error {
	if id == self || id.IsZero() {
		return nil
	}
	r, ok, err := p.peer(id)
	if err != nil {
		return err
	}
	if !ok {
		r = Peer{ID: id, FirstSeen: now, LastSeen: now}
	}
	old := r.Heard
	change(&r, !ok)
	if err := p.putPeer(r); err != nil {
		return err
	}
	if r.Heard != old {
		return p.reindexHeard(id, old, r.Heard)
	}
	return nil
}

// foldOrigin indexes (origin, originSeq) and advances the origin's
// high-water mark over every sequence now contiguous: a hole keeps the mark
// below it until the missing message arrives.
func foldOrigin(p projection, origin NodeID, originSeq, seq uint64) error {
	if err := p.putOrigin(origin, originSeq, seq); err != nil {
		return err
	}
	mark, err := p.watermark(origin)
	if err != nil || originSeq != mark+1 {
		return err
	}
	for {
		mark++
		next, err := p.hasOrigin(origin, mark+1)
		if err != nil {
			return err
		}
		if !next {
			return p.putWatermark(origin, mark)
		}
	}
}

// MergeAddrs returns first's addresses then second's, without repeats or
// empties, at most MaxAddrs: the one rule for combining address lists.
func MergeAddrs(first, second []string) []string {
	out := make([]string, 0, min(len(first)+len(second), MaxAddrs))
	for _, list := range [][]string{first, second} {
		for _, a := range list {
			if len(out) == MaxAddrs {
				return out
			}
			if a != "" && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// encodePeer is the stored form of a peer row. JSON: rows are few and
// small, and a readable encoding makes the projection easy to inspect.
func encodePeer(p Peer) ([]byte, error) { return json.Marshal(p) }

func decodePeer(b []byte) (Peer, error) {
	var p Peer
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode peer row: %w", err)
	}
	return p, nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// memProjection is the projection Verify rebuilds in memory.
type memProjection struct {
	peers      map[NodeID]Peer
	watermarks map[NodeID]uint64
	origins    map[originKey]uint64
}

type originKey struct {
	origin NodeID
	seq    uint64
}

func newMemProjection() *memProjection {
	return &memProjection{
		peers:      map[NodeID]Peer{},
		watermarks: map[NodeID]uint64{},
		origins:    map[originKey]uint64{},
	}
}

func (m *memProjection) peer(id NodeID) (Peer, bool, error) {
	p, ok := m.peers[id]
	return p, ok, nil
}

// putPeer keeps the row as the store would read it back. Rows are JSON,
// which turns invalid UTF-8 into U+FFFD, so a later fold must see the
// same strings here as on the append path.
func (m *memProjection) putPeer(p Peer) error {
	b, err := encodePeer(p)
	if err != nil {
		return err
	}
	if p, err = decodePeer(b); err != nil {
		return err
	}
	m.peers[p.ID] = p
	return nil
}

func (m *memProjection) deletePeer(r Peer) error {
	delete(m.peers, r.ID)
	return nil
}

// reindexHeard has nothing to do: Verify checks the stored index against
// the rows' Heard.
func (m *memProjection) reindexHeard(NodeID, uint64, uint64) error { return nil }

func (m *memProjection) watermark(origin NodeID) (uint64, error) {
	return m.watermarks[origin], nil
}

func (m *memProjection) putWatermark(origin NodeID, seq uint64) error {
	m.watermarks[origin] = seq
	return nil
}

func (m *memProjection) hasOrigin(origin NodeID, seq uint64) (bool, error) {
	_, ok := m.origins[originKey{origin, seq}]
	return ok, nil
}

func (m *memProjection) putOrigin(origin NodeID, originSeq, seq uint64) error {
	m.origins[originKey{origin, originSeq}] = seq
	return nil
}
