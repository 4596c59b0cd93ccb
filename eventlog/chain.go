package eventlog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
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
// when it does not, each message of the run is checked alone. A forged,
// altered or reordered message breaks its run there, so it is checked on
// its own signature and refused with the error VerifySigned gives it.
//
// The one answer that may differ from VerifySigned's is for a message
// whose own signature fails but whose origin signed a successor chaining
// to it: only the origin's key can make such a pair, and the message is
// then the origin's, as the successor says. doc.go says what follows.
func VerifyChained(ms []Signed) []error {
	errs := make([]error, len(ms))
	next := make([]int, len(ms)) // the next message of i's run, or -1
	hashes := make([][]byte, len(ms))
	last := map[NodeID]int{} // the newest message of each origin's open run
	var tails []int
	for i, m := range ms {
		next[i] = -1
		if m == nil {
			errs[i] = errors.New("no signed message")
			continue
		}
		if err := m.checkFields(); err != nil {
			errs[i] = err
			continue
		}
		origin, seq := m.OriginKey()
		if j, ok := last[origin]; ok {
			if _, pseq := ms[j].OriginKey(); pseq+1 == seq {
				if prev := prevOf(m); len(prev) > 0 && bytes.Equal(prev, hashOf(ms, hashes, j)) {
					next[j] = i
				}
			}
		}
		last[origin] = i
	}
	// A run's tail is a message that nothing after it chains to.
	for i := range ms {
		if errs[i] == nil && next[i] < 0 {
			tails = append(tails, i)
		}
	}
	tailMsgs := make([]Signed, len(tails))
	for k, i := range tails {
		tailMsgs[k] = ms[i]
	}
	tailErrs := VerifyBatch(tailMsgs)
	// Walk each run from its head: heads are the messages no one
	// chains to.
	isNext := make([]bool, len(ms))
	for _, n := range next {
		if n >= 0 {
			isNext[n] = true
		}
	}
	tailErr := make(map[int]error, len(tails))
	for k, i := range tails {
		tailErr[i] = tailErrs[k]
	}
	var alone []int // members of runs whose tail failed
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
			continue
		}
		errs[t] = tailErr[t]
		alone = append(alone, run[:len(run)-1]...)
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
	return errs
}

// hashOf returns ChainHash(ms[i]), computed once.
func hashOf(ms []Signed, hashes [][]byte, i int) []byte {
	if hashes[i] == nil {
		hashes[i] = ChainHash(ms[i])
	}
	return hashes[i]
}
