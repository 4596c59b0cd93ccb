package eventlog

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// ChatsBefore returns up to n CHAT events with a seq below before, the
// newest of them, oldest first; before 0 means from the end of the log. A
// reader scrolls back page by page, passing the Seq of the oldest line it
// holds. Like LastChats it walks the chat index in one read transaction,
// so a page costs the same however deep in the log it lies.
func (l *Log) ChatsBefore(before uint64, n int) ([]Event, error) {
	if n <= 0 || before == 1 {
		return nil, nil
	}
	var out []Event
	err := l.st.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		for _, seq := range chatSeqsBefore(tx.Bucket(bucketChats), before, n) {
			e, err := Decode(seq, events.Get(seqKey(seq)))
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// chatSeqsBefore returns the seqs of the newest n CHATs below before (all,
// for before 0), newest first.
func chatSeqsBefore(b *bolt.Bucket, before uint64, n int) []uint64 {
	if before == 0 {
		return lastChatSeqs(b, n)
	}
	last := before - 1
	var out []uint64
	c := b.Cursor()
	k, v := c.Seek(seqKey(last / chatBlock))
	switch {
	case k == nil:
		k, v = c.Last()
	case binary.BigEndian.Uint64(k) > last/chatBlock:
		k, v = c.Prev()
	}
	for ; k != nil && len(out) < n; k, v = c.Prev() {
		if len(k) != 8 || len(v) != 8 {
			continue // verify reports it
		}
		block, bits := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v)
		for i := chatBlock - 1; i >= 0 && len(out) < n; i-- {
			seq := block*chatBlock + uint64(i)
			if bits&(1<<i) != 0 && seq <= last {
				out = append(out, seq)
			}
		}
	}
	return out
}
