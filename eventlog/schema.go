package eventlog

import (
	"encoding/binary"
	"fmt"

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
