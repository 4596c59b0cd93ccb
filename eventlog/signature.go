package eventlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"runtime"
	"sync"

	"filippo.io/edwards25519"
	"github.com/hdevalence/ed25519consensus"
)

// ErrBadSignature is returned by Verify for a forged or altered message.
var ErrBadSignature = errors.New("bad signature")

// signature is what checking one signed message's signature needs: the
// origin that must have made it, the bytes it covers and the signature.
type signature struct {
	origin NodeID
	msg    []byte
	sig    []byte
}

// valid checks the signature alone, by the rules of ZIP 215 (doc.go says
// why those), which a batch check agrees with.
func (s signature) valid() bool {
	return len(s.sig) == ed25519.SignatureSize && ed25519consensus.Verify(s.origin.PublicKey(), s.msg, s.sig)
}

// checkShape checks what a signed message must be before its signature is
// worth checking: present, with valid fields.
func checkShape(m Signed) error {
	if m == nil {
		return errors.New("no signed message")
	}
	return m.checkFields()
}

// VerifySigned checks one signed message as its Verify method does: its
// shape, then its signature.
func VerifySigned(m Signed) error {
	if err := checkShape(m); err != nil {
		return err
	}
	if !m.signature().valid() {
		return ErrBadSignature
	}
	return nil
}

// minParallelVerify is the fewest messages a core is given when a batch
// is split over cores: below it, the batch check saves little and
// starting a goroutine costs more than it saves.
const minParallelVerify = 32

// VerifyBatch checks every message of ms as VerifySigned does and returns
// one error per message, nil for each that holds; the errors are exactly
// the ones VerifySigned would return, message by message. The signatures
// are checked together (one multi-scalar multiplication per batch costs
// about half of checking them one by one, and a quarter when the batch is
// of a few authors' lines: see batchHolds), split over every core when
// there are enough. When a batch fails, its halves are checked again, and
// so on down to single messages, so one forged message among good ones
// costs a few more batch checks and is the only one refused.
func VerifyBatch(ms []Signed) []error {
	errs := make([]error, len(ms))
	workers := min(runtime.GOMAXPROCS(0), len(ms)/minParallelVerify)
	if workers <= 1 {
		verifyPart(ms, errs)
		return errs
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(ms)/workers, (w+1)*len(ms)/workers
		wg.Go(func() { verifyPart(ms[lo:hi], errs[lo:hi]) })
	}
	wg.Wait()
	return errs
}

// verifyPart checks ms on the calling goroutine, writing errs.
func verifyPart(ms []Signed, errs []error) {
	sigs := make([]signature, 0, len(ms))
	at := make([]int, 0, len(ms)) // where each of sigs is in ms
	for i, m := range ms {
		if err := checkShape(m); err != nil {
			errs[i] = err
			continue
		}
		sigs = append(sigs, m.signature())
		at = append(at, i)
	}
	for _, bad := range badSignatures(sigs) {
		errs[at[bad]] = ErrBadSignature
	}
}

// smallestBatch is the size below which a batch check saves nothing over
// checking each signature alone.
const smallestBatch = 4

// badSignatures returns the indexes of the signatures of sigs that do not
// hold, in order. It checks them as one batch, and only when that fails
// looks into each half.
func badSignatures(sigs []signature) []int {
	if len(sigs) < smallestBatch {
		var bad []int
		for i, s := range sigs {
			if !s.valid() {
				bad = append(bad, i)
			}
		}
		return bad
	}
	if batchHolds(sigs) {
		return nil
	}
	half := len(sigs) / 2
	bad := badSignatures(sigs[:half])
	for _, i := range badSignatures(sigs[half:]) {
		bad = append(bad, half+i)
	}
	return bad
}

// batchHolds reports whether every signature of sigs holds, checked
// together. A false answer does not say which.
//
// It checks ed25519consensus's batch equation, by the same rules (ZIP
// 215, cofactored), with one change that library has no way to make: the
// terms of one key are summed before the multi-scalar multiplication,
//
//	[8]( [−Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + Σ_A [Σ_{i: Aᵢ=A} zᵢkᵢ]A ) = 0,
//
// with zᵢ random 128-bit scalars, which is the same sum regrouped. A
// burst or a catch-up is mostly one author's lines, so a batch of n
// lines then decompresses and multiplies n+1 points instead of 2n,
// about half the work of a check.
func batchHolds(sigs []signature) bool {
	n := len(sigs)
	if n == 0 {
		return false
	}
	random := make([]byte, 16*n)
	if _, err := rand.Read(random); err != nil {
		return false
	}
	// Terms: B, then each Rᵢ, then each distinct key; at most 1+2n.
	svals := make([]edwards25519.Scalar, 1, 1+2*n)
	pvals := make([]edwards25519.Point, 1, 1+2*n)
	pvals[0].Set(edwards25519.NewGeneratorPoint())
	keyAt := make(map[NodeID]int, 1)
	var keys []NodeID
	var keyCoeffs []edwards25519.Scalar
	var wide [32]byte
	var k, s, zk edwards25519.Scalar
	var digest [sha512.Size]byte
	h := sha512.New()
	for i, sg := range sigs {
		if len(sg.sig) != ed25519.SignatureSize {
			return false
		}
		svals = append(svals, edwards25519.Scalar{})
		pvals = append(pvals, edwards25519.Point{})
		z, R := &svals[len(svals)-1], &pvals[len(pvals)-1]
		if _, err := R.SetBytes(sg.sig[:32]); err != nil {
			return false
		}
		if _, err := s.SetCanonicalBytes(sg.sig[32:]); err != nil {
			return false
		}
		copy(wide[:16], random[16*i:16*i+16])
		if _, err := z.SetCanonicalBytes(wide[:]); err != nil {
			return false
		}
		h.Reset()
		h.Write(sg.sig[:32])
		h.Write(sg.origin[:])
		h.Write(sg.msg)
		if _, err := k.SetUniformBytes(h.Sum(digest[:0])); err != nil {
			return false
		}
		svals[0].MultiplyAdd(z, &s, &svals[0])
		j, seen := keyAt[sg.origin]
		if !seen {
			j = len(keys)
			keyAt[sg.origin] = j
			keys = append(keys, sg.origin)
			keyCoeffs = append(keyCoeffs, edwards25519.Scalar{})
		}
		zk.Multiply(z, &k)
		keyCoeffs[j].Add(&keyCoeffs[j], &zk)
	}
	svals[0].Negate(&svals[0]) // the B term is subtracted
	for j, key := range keys {
		pvals = append(pvals, edwards25519.Point{})
		if _, err := pvals[len(pvals)-1].SetBytes(key[:]); err != nil {
			return false
		}
		svals = append(svals, keyCoeffs[j])
	}
	scalars := make([]*edwards25519.Scalar, len(svals))
	points := make([]*edwards25519.Point, len(pvals))
	for i := range svals {
		scalars[i], points[i] = &svals[i], &pvals[i]
	}
	check := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	check.MultByCofactor(check)
	return check.Equal(edwards25519.NewIdentityPoint()) == 1
}
