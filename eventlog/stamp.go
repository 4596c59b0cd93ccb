package eventlog

import (
	"crypto/ed25519"
	"time"
)

// stampable is a signed message this node can write: the log gives it its
// origin seq and time and signs it (Log.prepare).
type stampable interface {
	Signed
	// prev is the chain hash of the node's message seq-1, or nil when
	// the log does not hold it; Sealed and Ack do not chain.
	stamped(seq uint64, at time.Time, key ed25519.PrivateKey, prev []byte) Signed
}

func (c Chat) stamped(seq uint64, at time.Time, key ed25519.PrivateKey, prev []byte) Signed {
	c.OriginSeq, c.OriginTime, c.Prev = seq, at, prev
	c.Sign(key)
	return c
}

func (n Nick) stamped(seq uint64, at time.Time, key ed25519.PrivateKey, prev []byte) Signed {
	n.OriginSeq, n.OriginTime, n.Prev = seq, at, prev
	n.Sign(key)
	return n
}

func (s Sealed) stamped(seq uint64, at time.Time, key ed25519.PrivateKey, _ []byte) Signed {
	s.OriginSeq, s.OriginTime = seq, at
	s.Sign(key)
	return s
}

func (a Ack) stamped(seq uint64, at time.Time, key ed25519.PrivateKey, _ []byte) Signed {
	a.OriginSeq, a.OriginTime = seq, at
	a.Sign(key)
	return a
}
