package eventlog

import (
	"cmp"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// maxPrivateWalk bounds the events LastLines reads to find private
// messages among the newest lines.
const maxPrivateWalk = 100_000

// LastLines returns the newest n lines of this node's history, oldest
// first: chat lines (CHAT) and the private messages (SEALED, and PRIVATE of
// earlier releases) this node sent or received; the sealed messages of
// others that it only carries are not its history. Chat lines come from the chat index, as in LastChats;
// private messages are looked for among the events since the oldest of
// those chat lines, newest first and at most maxPrivateWalk of them, so
// the cost follows what is shown rather than the log's size.
func (l *Log) LastLines(n int) ([]Event, error) {
	chats, err := l.LastChats(n)
	if err != nil || n <= 0 {
		return chats, err
	}
	from := uint64(1)
	if len(chats) == n {
		from = chats[0].Seq
	}
	var private []Event
	err = l.st.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		walked := 0
		for k, v := c.Last(); k != nil && walked < maxPrivateWalk && len(private) < n; k, v = c.Prev() {
			seq := binary.BigEndian.Uint64(k)
			if seq < from {
				break
			}
			walked++
			if t := storedType(v); t != TypeSealed && t != TypePrivate {
				continue // most events: skipped without decoding
			}
			e, err := Decode(seq, v)
			if err != nil {
				return err
			}
			switch b := e.Body.(type) {
			case Sealed:
				if b.Origin == l.self || b.To == l.self {
					private = append(private, e)
				}
			case Private: // of an earlier release: only ever stored at its two ends
				private = append(private, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := append(chats, private...)
	slices.SortFunc(out, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return out[max(0, len(out)-n):], nil
}

// storedType is the type of a stored event, read from its second byte
// (codec.go) without decoding the rest.
func storedType(data []byte) Type {
	if len(data) < 2 {
		return 0
	}
	return Type(data[1])
}
