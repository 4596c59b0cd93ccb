package eventlog

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// The buckets of the log. The store keeps them in its file; what they hold
// and how they evolve is this package's.
var (
	bucketEvents     = []byte("events")     // local seq (8 bytes BE) -> encoded event
	bucketChats      = []byte("chats")      // seq / chatBlock -> bitmap of the CHATs among them
	bucketOrigins    = []byte("origins")    // origin ID -> nested bucket: origin seq (BE) -> local seq
	bucketPeers      = []byte("peers")      // projection: node ID -> peer record
	bucketWatermarks = []byte("watermarks") // projection: origin ID -> highest contiguous origin seq
	bucketLog        = []byte("log")        // the log's own records: the retention checkpoint
	bucketHearsay    = []byte("hearsay")    // projection: heard seq (8 bytes BE) + node ID -> empty, per hearsay row
)

// migrations[v] upgrades the log's layout from schema v to v+1; Open hands
// them to the store, which runs what a file lacks.
var migrations = []store.Migration{
	0: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketChats, bucketOrigins, bucketPeers, bucketWatermarks} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	},
	1: migrateChatIndex1to2,
	2: func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLog)
		return err
	},
	3: migrateHearsay3to4,
}

// SchemaVersion is the layout of the file this binary reads and writes.
var SchemaVersion = uint64(len(migrations))

// migrateChatIndex1to2 turns the chat index from one row per CHAT
// (schema 1: seq -> empty) into bitmap blocks, about 24 bytes less per
// line on disk.
func migrateChatIndex1to2(tx *bolt.Tx) error {
	old := tx.Bucket(bucketChats)
	blocks := map[uint64]uint64{}
	if err := old.ForEach(func(k, _ []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("chat index key of %d bytes", len(k))
		}
		seq := binary.BigEndian.Uint64(k)
		blocks[seq/chatBlock] |= 1 << (seq % chatBlock)
		return nil
	}); err != nil {
		return err
	}
	if err := tx.DeleteBucket(bucketChats); err != nil {
		return err
	}
	b, err := tx.CreateBucket(bucketChats)
	if err != nil {
		return err
	}
	for block, bits := range blocks {
		if err := b.Put(binary.BigEndian.AppendUint64(nil, block), binary.BigEndian.AppendUint64(nil, bits)); err != nil {
			return err
		}
	}
	return nil
}

// migrateHearsay3to4 marks the rows that hearsay alone made (Peer.Heard)
// and indexes them, so that a full table can evict them. Heard is what
// fold would have given each row, so Verify agrees at once: the live rows
// get it by folding the log again from the retention checkpoint (the
// peer table only, as Prune does), and the checkpoint's own rows by
// folding the events it kept (every JOIN, PEERS, rename, ban and private
// message), with a row whose CONNECT or DISCONNECT was pruned known by
// its times, and one that only a pruned DIAL_FAILED made counted as
// known: nothing is left to date it. It reads the whole log once; only
// the peer table and the checkpoint are rewritten.
func migrateHearsay3to4(tx *bolt.Tx) error {
	index, err := tx.CreateBucketIfNotExists(bucketHearsay)
	if err != nil {
		return err
	}
	// The node's own ID is not at hand here; it never has a row, so a
	// row the fold makes for it is never copied anywhere.
	var self NodeID
	base := newMemProjection()
	var rep Report
	cut, err := readCheckpoint(tx, base, &rep)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("retention checkpoint: %s", rep.Problems[0])
	}
	if cut > 0 {
		kept := peerProjection{newMemProjection()} // what the kept events make
		err := forEachPeerEvent(tx, 1, cut, func(e Event) error { return fold(kept, self, e) })
		if err != nil {
			return err
		}
		rows := tx.Bucket(bucketLog).Bucket(bucketCutPeers)
		for id, r := range base.peers {
			k, ok := kept.peers[id]
			if !ok || k.Heard == 0 || !r.LastConnect.IsZero() || !r.LastDisconnect.IsZero() {
				continue
			}
			r.Heard = k.Heard
			base.peers[id] = r
			v, err := encodePeer(r)
			if err != nil {
				return err
			}
			if err := rows.Put(id[:], v); err != nil {
				return err
			}
		}
	}
	live := peerProjection{base}
	err = forEachPeerEvent(tx, cut+1, math.MaxUint64, func(e Event) error { return fold(live, self, e) })
	if err != nil {
		return err
	}
	peers := tx.Bucket(bucketPeers)
	type update struct {
		key, value []byte
		heard      uint64
	}
	var updates []update
	err = peers.ForEach(func(k, v []byte) error {
		var id NodeID
		if len(k) != len(id) {
			return nil // Verify reports it
		}
		copy(id[:], k)
		r, err := decodePeer(v)
		if err != nil {
			return nil // Verify reports it
		}
		if r.Heard = live.peers[id].Heard; r.Heard == 0 {
			return nil
		}
		nv, err := encodePeer(r)
		if err != nil {
			return err
		}
		updates = append(updates, update{key: append([]byte(nil), k...), value: nv, heard: r.Heard})
		return nil
	})
	if err != nil {
		return err
	}
	// Written after the walk: bbolt does not allow a Put while ForEach
	// runs over the same bucket.
	for _, u := range updates {
		if err := peers.Put(u.key, u.value); err != nil {
			return err
		}
		var id NodeID
		copy(id[:], u.key)
		if err := index.Put(heardKey(u.heard, id), nil); err != nil {
			return err
		}
	}
	return nil
}

// forEachPeerEvent calls fn with every stored event numbered from from to
// to that can change the peer table, oldest first. Signed chat lines, the bulk of a log, are
// skipped by their type byte, undecoded; an event that does not decode is
// skipped too (Verify reports it).
func forEachPeerEvent(tx *bolt.Tx, from, to uint64, fn func(Event) error) error {
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) < 2 {
			continue
		}
		if binary.BigEndian.Uint64(k) > to {
			return nil
		}
		switch Type(v[1]) {
		case TypeChat, TypeSealed, TypeAck:
			continue
		}
		e, err := Decode(binary.BigEndian.Uint64(k), v)
		if err != nil {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}
