package eventlog

import (
	"crypto/ed25519"
	"errors"
	"runtime"
	"sync"

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
// about half of checking them one by one), split over every core when
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
func batchHolds(sigs []signature) bool {
	v := ed25519consensus.NewPreallocatedBatchVerifier(len(sigs))
	for _, s := range sigs {
		if len(s.sig) != ed25519.SignatureSize {
			return false
		}
		v.Add(s.origin.PublicKey(), s.msg, s.sig)
	}
	return v.Verify()
}
