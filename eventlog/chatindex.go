package eventlog

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// The chat index says which events are CHATs, so that the last N lines
// are found without reading anything else. It is a bitmap in blocks:
// key = seq / chatBlock (8 bytes, big-endian), value = 8 bytes whose bit
// seq % chatBlock is set for a CHAT. A log of chat costs under a byte per
// line for it; a block with no chat is never written, so runs of other
// events cost nothing to skip.
const chatBlock = 64

// markChat sets seq's bit.
func markChat(b *bolt.Bucket, seq uint64) error {
	key := seqKey(seq / chatBlock)
	var bits uint64
	if v := b.Get(key); len(v) == 8 {
		bits = binary.BigEndian.Uint64(v)
	}
	bits |= 1 << (seq % chatBlock)
	return b.Put(key, binary.BigEndian.AppendUint64(make([]byte, 0, 8), bits))
}

// lastChatSeqs returns the seqs of the newest n CHATs, newest first.
func lastChatSeqs(b *bolt.Bucket, n int) []uint64 {
	var out []uint64
	c := b.Cursor()
	for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
		if len(k) != 8 || len(v) != 8 {
			continue // verify reports it
		}
		block, bits := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v)
		for i := chatBlock - 1; i >= 0 && len(out) < n; i-- {
			if bits&(1<<i) != 0 {
				out = append(out, block*chatBlock+uint64(i))
			}
		}
	}
	return out
}

// forEachChatSeq calls fn for every seq the index marks, oldest first.
func forEachChatSeq(b *bolt.Bucket, fn func(seq uint64)) (malformed int) {
	_ = b.ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) != 8 {
			malformed++
			return nil
		}
		block, bits := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v)
		for i := 0; i < chatBlock; i++ {
			if bits&(1<<i) != 0 {
				fn(block*chatBlock + uint64(i))
			}
		}
		return nil
	})
	return malformed
}
