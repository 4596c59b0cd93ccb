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

// chatMarks sets the bits of the CHATs one write transaction stores. Their
// seqs ascend, so it keeps the block being filled and writes it once it
// moves on to the next, and last in flush: a block is read and written
// once per transaction, not once per line.
type chatMarks struct {
	b       *bolt.Bucket
	block   uint64
	bits    uint64
	pending bool // block and bits are not written yet
}

// mark sets seq's bit.
func (m *chatMarks) mark(seq uint64) error {
	block := seq / chatBlock
	if m.pending && block != m.block {
		if err := m.flush(); err != nil {
			return err
		}
	}
	if !m.pending {
		m.block, m.bits, m.pending = block, 0, true
		if v := m.b.Get(seqKey(block)); len(v) == 8 {
			m.bits = binary.BigEndian.Uint64(v)
		}
	}
	m.bits |= 1 << (seq % chatBlock)
	return nil
}

// flush writes the block being filled.
func (m *chatMarks) flush() error {
	if !m.pending {
		return nil
	}
	m.pending = false
	return m.b.Put(seqKey(m.block), binary.BigEndian.AppendUint64(make([]byte, 0, 8), m.bits))
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
