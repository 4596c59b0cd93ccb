package eventlog

import (
	"crypto/ed25519"
	"time"
)

// stampable is a signed message this node can write: the log gives it its
// origin seq and time and signs it (Log.prepare).
type stampable interface {
	Signed
	stamped(seq uint64, at time.Time, key ed25519.PrivateKey) Signed
}

func (c Chat) stamped(seq uint64, at time.Time, key ed25519.PrivateKey) Signed {
	c.OriginSeq, c.OriginTime = seq, at
	c.Sign(key)
	return c
}

func (n Nick) stamped(seq uint64, at time.Time, key ed25519.PrivateKey) Signed {
	n.OriginSeq, n.OriginTime = seq, at
	n.Sign(key)
	return n
}

func (s Sealed) stamped(seq uint64, at time.Time, key ed25519.PrivateKey) Signed {
	s.OriginSeq, s.OriginTime = seq, at
	s.Sign(key)
	return s
}

func (a Ack) stamped(seq uint64, at time.Time, key ed25519.PrivateKey) Signed {
	a.OriginSeq, a.OriginTime = seq, at
	a.Sign(key)
	return a
}
