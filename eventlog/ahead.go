package eventlog

import (
	"bytes"
	"context"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Signing the node's own messages ahead of the writer.
//
// The writer numbers, chains and signs the node's own messages inside its
// write transaction (prepare), where it knows the node's newest message
// for certain. But a signature is most of what an own line costs, and the
// writer is one goroutine: while it signs, it neither writes nor commits
// anything else. Sign lets the caller sign a batch while the writer
// commits the one before; AppendSigned then checks, inside the
// transaction, that each message still follows the node's newest one as
// held (the next origin seq, and Prev naming it), and numbers and signs
// again, as prepare does, any that does not. A message of its own caught
// up from a peer (a restored backup), or a batch that failed, can move
// the node's newest message under the signer; a wrong guess then costs a
// second signature, never a wrong number or a broken chain.

// signedAhead is the newest own message Sign signed, or the log held when
// Sign last read it.
type signedAhead struct {
	mu    sync.Mutex
	known bool // seq and hash are set
	seq   uint64
	hash  []byte // its chain hash; nil when the log does not hold it
}

// Sign numbers, stamps and signs the node's own messages among bodies
// (those Append would: OriginSeq 0) ahead of the write, each chaining to
// the one Sign signed before it, the first ever to the node's newest
// message the log holds. It returns them, and every other body as it
// was, for AppendSigned, in the same order.
func (l *Log) Sign(bodies []Body) ([]Body, error) {
	a := &l.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.known {
		if err := l.readAhead(); err != nil {
			return nil, err
		}
	}
	now := l.now().Round(0).UTC()
	out := make([]Body, len(bodies))
	for i, body := range bodies {
		s, ok := body.(stampable)
		if !ok || !unnumbered(s) {
			out[i] = body
			continue
		}
		a.seq++
		var prev []byte
		if chainable(s) {
			prev = a.hash
		}
		signed := s.stamped(a.seq, now, l.key, prev)
		a.hash = ChainHash(signed)
		out[i] = signed
	}
	return out, nil
}

// readAhead sets l.ahead to the node's newest message the log holds.
func (l *Log) readAhead() error {
	a := &l.ahead
	return l.st.View(func(tx *bolt.Tx) error {
		p := txProjection{tx: tx}
		a.seq, a.hash = p.lastOrigin(l.self), nil
		if a.seq > 0 {
			m, held, err := p.signed(l.self, a.seq)
			if err != nil {
				return err
			}
			if held {
				a.hash = ChainHash(m)
			}
		}
		a.known = true
		return nil
	})
}

// forgetAhead has the next Sign read the node's newest message from the
// log again.
func (l *Log) forgetAhead() {
	l.ahead.mu.Lock()
	l.ahead.known = false
	l.ahead.mu.Unlock()
}

// AppendSigned is Append for bodies Sign returned. Each of the node's own
// messages among them that no longer follows the node's newest one as the
// transaction finds it is numbered and signed again, as Append would;
// Result.Body is the message as stored.
func (l *Log) AppendSigned(ctx context.Context, bodies []Body) ([]Result, error) {
	r := &request{bodies: bodies, signedAhead: true, done: make(chan struct{})}
	results, err := l.submit(ctx, r)
	if err != nil || r.signedAgain {
		l.forgetAhead()
	}
	return results, err
}

// unnumbered reports whether s waits for the log to number it.
func unnumbered(s Signed) bool {
	_, seq := s.OriginKey()
	return seq == 0
}

// chainable reports whether s is of a type that names its predecessor.
func chainable(s Signed) bool {
	switch s.(type) {
	case Chat, Nick:
		return true
	}
	return false
}

// follows reports whether the node's own message s, signed ahead, is
// what prepare would make of it now (nextOwn): the origin seq after the
// newest one held, and the Prev prepare would give it.
func (c *chainCache) follows(self NodeID, s Signed) (bool, error) {
	seq, prev, err := c.nextOwn(self, s)
	if err != nil {
		return false, err
	}
	_, got := s.OriginKey()
	return got == seq && bytes.Equal(prevOf(s), prev), nil
}

// unstamped is s as handed in, for prepare to number and sign again.
func unstamped(s Signed) Body {
	switch b := s.(type) {
	case Chat:
		b.OriginSeq = 0
		return b
	case Nick:
		b.OriginSeq = 0
		return b
	case Sealed:
		b.OriginSeq = 0
		return b
	case Ack:
		b.OriginSeq = 0
		return b
	}
	return s
}
