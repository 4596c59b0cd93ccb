package eventlog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ChainHashSize is the size of a chain hash, Chat.Prev and Nick.Prev.
const ChainHashSize = sha256.Size

// ChainHash is the hash a chained message names its predecessor by:
// SHA-256 of the predecessor's signed bytes followed by its signature.
// It covers the signature too, so that a chain vouches for the exact
// bytes a node stores and relays, and a line taken on its successor's
// word is still one every node can check on its own. Any signed message
// has one, chained or not.
func ChainHash(m Signed) []byte {
	s := m.signature()
	h := sha256.New()
	h.Write(s.msg)
	h.Write(s.sig)
	return h.Sum(nil)
}

// checkPrev checks the shape of a Prev field: empty, or a hash; never on
// an origin's first message, which has nothing to chain to.
func checkPrev(seq uint64, prev []byte) error {
	switch {
	case len(prev) == 0:
		return nil
	case len(prev) != ChainHashSize:
		return fmt.Errorf("prev has %d bytes, want %d", len(prev), ChainHashSize)
	case seq == 1:
		return errors.New("prev on origin seq 1")
	}
	return nil
}

// Chained reports whether m names its predecessor (Prev): only such a
// message is ever taken on a successor's word.
func Chained(m Signed) bool { return len(prevOf(m)) > 0 }

// PrevOf is the Prev of a chained message, nil for any other.
func PrevOf(m Signed) []byte { return prevOf(m) }

// prevOf is the Prev of a chained message, nil for any other.
func prevOf(m Signed) []byte {
	switch b := m.(type) {
	case Chat:
		return b.Prev
	case Nick:
		return b.Prev
	}
	return nil
}

// VerifyChained checks ms as VerifyBatch does, but takes a chain's word
// for what it vouches for: ms is cut, per origin and in the order given,
// into runs in which each message has the origin seq after the one before
// it and names it in Prev (ChainHash), and only the last signature of each
// run is checked (those of all runs together, as VerifyBatch does). When
// it holds, every message of its run is exactly what the origin signed;
// when it does not, each message of the run is checked alone, and those up
// to the last one whose own signature holds are taken on its word. A
// forged, altered or reordered message breaks its run there, so it is
// checked on its own signature and refused with the error VerifySigned
// gives it.
//
// Only a chained message (one with Prev) is ever taken on a successor's
// word: an unchained one (an origin's first, a Sealed or Ack, any line of
// before chains) may be sent to peers of older protocol versions, which
// check it alone, so it must hold alone; it ends the run before it.
//
// The answers that may differ from VerifySigned's are for a chained
// message whose own signature fails but whose origin signed a successor
// chaining to it: only the origin's key can make such a pair, and the
// message is then the origin's, as the successor says. doc.go ("Hash
// chains") says how package peering makes every node decide such a message
// alike whatever its batches.
func VerifyChained(ms []Signed) []error {
	errs, _, _ := VerifyChainedOpen(ms)
	return errs
}

// VerifyChainedOpen is VerifyChained, and also says which refused messages
// a successor not in ms could still vouch for (open[i]): chained messages
// whose own signature fails, after the last message of their run that
// holds, in a run that ends with the newest message of its origin in ms.
// The refused message the successor of that newest one would chain to
// vouches for the rest of them through the chain; Log.Vouches says whether
// the log holds such a successor. Every other refused message is refused
// whatever comes later.
//
// vouchedBy[i] is, for a message taken on a later one's word, the index
// of the message after it in its run, whose signature or whose own
// voucher vouches for it; -1 for the others. Log.AppendVouched takes it,
// so that no such message is stored without what vouches for it.
func VerifyChainedOpen(ms []Signed) (errs []error, open []bool, vouchedBy []int) {
	return VerifyChainedOpenKnown(ms, nil)
}

// VerifyChainedOpenKnown is VerifyChainedOpen for a batch some messages
// of which an earlier check found failing on their own signatures:
// knownBad[i] is that check's error, or nil (knownBad may be nil). Their
// signatures are not checked again: only a successor can vouch for them.
// So a node that holds such messages back and checks them again with each
// later batch (package peering) pays for their signatures once, not once
// per batch.
func VerifyChainedOpenKnown(ms []Signed, knownBad []error) (errs []error, open []bool, vouchedBy []int) {
	known := func(i int) error {
		if knownBad == nil {
			return nil
		}
		return knownBad[i]
	}
	errs = make([]error, len(ms))
	open = make([]bool, len(ms))
	vouchedBy = make([]int, len(ms))
	for i := range vouchedBy {
		vouchedBy[i] = -1
	}
	next := make([]int, len(ms)) // the next message of i's run, or -1
	hashes := make([][]byte, len(ms))
	last := map[NodeID]int{} // the newest message of each origin
	for i, m := range ms {
		next[i] = -1
		if err := checkShape(m); err != nil {
			errs[i] = err
			continue
		}
		origin, seq := m.OriginKey()
		if j, ok := last[origin]; ok && len(prevOf(ms[j])) > 0 {
			if _, pseq := ms[j].OriginKey(); pseq+1 == seq {
				if prev := prevOf(m); len(prev) > 0 && bytes.Equal(prev, hashOf(ms, hashes, j)) {
					next[j] = i
				}
			}
		}
		last[origin] = i
	}
	// A run's tail is a message that nothing after it chains to.
	var tails []int
	for i := range ms {
		if errs[i] == nil && next[i] < 0 {
			tails = append(tails, i)
		}
	}
	tailErr := make(map[int]error, len(tails))
	tails = settleKnown(tails, known, tailErr)
	tailMsgs := make([]Signed, len(tails))
	for k, i := range tails {
		tailMsgs[k] = ms[i]
	}
	for k, err := range VerifyBatch(tailMsgs) {
		tailErr[tails[k]] = err
	}
	// Walk each run from its head: heads are the messages no one
	// chains to.
	isNext := make([]bool, len(ms))
	for _, n := range next {
		if n >= 0 {
			isNext[n] = true
		}
	}
	var failed [][]int // runs whose tail failed
	var alone []int    // their other members
	for i := range ms {
		if errs[i] != nil || isNext[i] {
			continue
		}
		var run []int
		for j := i; j >= 0; j = next[j] {
			run = append(run, j)
		}
		t := run[len(run)-1]
		if tailErr[t] == nil {
			for _, j := range run[:len(run)-1] {
				vouchedBy[j] = next[j]
			}
			continue
		}
		errs[t] = tailErr[t]
		failed = append(failed, run)
		alone = append(alone, run[:len(run)-1]...)
	}
	aloneErr := make(map[int]error)
	alone = settleKnown(alone, known, aloneErr)
	for i, err := range aloneErr {
		errs[i] = err
	}
	if len(alone) > 0 {
		sub := make([]Signed, len(alone))
		for k, i := range alone {
			sub[k] = ms[i]
		}
		for k, err := range VerifyBatch(sub) {
			errs[alone[k]] = err
		}
	}
	for _, run := range failed {
		// The last member whose own signature holds vouches for every
		// member before it.
		v := -1
		for k := len(run) - 1; k >= 0; k-- {
			if errs[run[k]] == nil {
				v = k
				break
			}
		}
		for k := 0; k < v; k++ {
			if errs[run[k]] != nil {
				errs[run[k]], vouchedBy[run[k]] = nil, next[run[k]]
			}
		}
		t := run[len(run)-1]
		origin, _ := ms[t].OriginKey()
		if last[origin] != t || len(prevOf(ms[t])) == 0 {
			continue // a later message of its origin broke the chain, or nothing can
		}
		for k, i := range run[v+1:] {
			open[i] = true
			// Stored only if the log vouches for the last of them,
			// the others each on the word of the one after it.
			if k < len(run)-v-2 {
				vouchedBy[i] = next[i]
			}
		}
	}
	return errs, open, vouchedBy
}

// settleKnown writes into errs the known failure of each message of idx
// that has one, and returns the others, whose signatures are to be
// checked.
func settleKnown(idx []int, known func(int) error, errs map[int]error) []int {
	rest := idx[:0:0]
	for _, i := range idx {
		if err := known(i); err != nil {
			errs[i] = err
			continue
		}
		rest = append(rest, i)
	}
	return rest
}

// hashOf returns ChainHash(ms[i]), computed once.
func hashOf(ms []Signed, hashes [][]byte, i int) []byte {
	if hashes[i] == nil {
		hashes[i] = ChainHash(ms[i])
	}
	return hashes[i]
}

// Vouch is what the log holds after a message: Log.Vouches.
type Vouch int

const (
	// VouchNone: the log holds no message with the next origin seq.
	VouchNone Vouch = iota
	// Vouched: the log holds the next message, and it names this one in
	// Prev. Whatever the log holds was checked or vouched for, so the
	// message is its origin's.
	Vouched
	// VouchOther: the log holds a next message that does not name this
	// one: its origin signed two messages after the one before, and this
	// is a fork, whoever brought it.
	VouchOther
)

// Vouches says, for each of ms, whether the log holds its origin's next
// message, and whether that one chains to it.
func (l *Log) Vouches(ms []Signed) ([]Vouch, error) {
	out := make([]Vouch, len(ms))
	if len(ms) == 0 {
		return out, nil
	}
	err := l.st.View(func(tx *bolt.Tx) error {
		p := txProjection{tx: tx}
		for i, m := range ms {
			origin, seq := m.OriginKey()
			next, held, err := p.signed(origin, seq+1)
			if err != nil {
				return err
			}
			switch {
			case !held:
			case bytes.Equal(prevOf(next), ChainHash(m)):
				out[i] = Vouched
			default:
				out[i] = VouchOther
			}
		}
		return nil
	})
	return out, err
}

// HeldOthers says, for each of ms, which message the log holds under its
// (origin, origin seq) when that is another message than ms[i] (its chain
// hash differs), or nil when the log holds ms[i] itself or nothing there.
// Signatures are not checked: a caller that acts on another message first
// checks that ms[i] is its origin's.
func (l *Log) HeldOthers(ms []Signed) ([]Signed, error) {
	out := make([]Signed, len(ms))
	if len(ms) == 0 {
		return out, nil
	}
	err := l.st.View(func(tx *bolt.Tx) error {
		p := txProjection{tx: tx, origins: originCache{}}
		for i, m := range ms {
			origin, seq := m.OriginKey()
			held, ok, err := p.signed(origin, seq)
			if err != nil {
				return err
			}
			if ok && !bytes.Equal(ChainHash(held), ChainHash(m)) {
				out[i] = held
			}
		}
		return nil
	})
	return out, err
}
