package eventlog

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/hdevalence/ed25519consensus"
	"pgregory.net/rapid"
)

// A signature whose R has a small-order component added is one that only
// the key's owner can make. crypto/ed25519's check, without the cofactor,
// refuses it; a batch check, with it, would accept it. Every node of this
// version judges it by ZIP 215, alone or in a batch alike, so it accepts
// it: the same line is never stored by one node and refused by another.
func TestASignatureWithASmallOrderComponentIsJudgedAlikeAloneAndInABatch(t *testing.T) {
	seed := sha512.Sum512([]byte("p2pchat torsion test"))
	key := ed25519.NewKeyFromSeed(seed[:32])
	c := Chat{OriginSeq: 1, OriginTime: time.Date(2026, 2, 1, 9, 30, 0, 0, time.UTC), Name: "Alice", Text: "hi"}
	copy(c.Origin[:], key.Public().(ed25519.PublicKey))

	h := sha512.Sum512(key.Seed())
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	r, err := new(edwards25519.Scalar).SetUniformBytes(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	// (0, -1), the point of order 2.
	order2, err := hex.DecodeString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	if err != nil {
		t.Fatal(err)
	}
	torsion, err := new(edwards25519.Point).SetBytes(order2)
	if err != nil {
		t.Fatal(err)
	}
	R := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(r), torsion)
	hk := sha512.New()
	hk.Write(R.Bytes())
	hk.Write(c.Origin[:])
	hk.Write(c.signingBytes())
	k, err := new(edwards25519.Scalar).SetUniformBytes(hk.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := new(edwards25519.Scalar).MultiplyAdd(k, a, r)
	c.Sig = append(R.Bytes(), s.Bytes()...)

	if ed25519.Verify(c.Origin.PublicKey(), c.signingBytes(), c.Sig) {
		t.Fatal("crypto/ed25519 accepts the crafted signature: the test crafted the wrong one")
	}
	if err := c.Verify(); err != nil {
		t.Errorf("alone: %v", err)
	}
	ms := make([]Signed, 64)
	for i := range ms {
		line := Chat{OriginSeq: uint64(i + 2), OriginTime: c.OriginTime, Name: "Alice", Text: "more"}
		line.Sign(key)
		ms[i] = line
	}
	ms[17] = c
	for i, err := range VerifyBatch(ms) {
		if err != nil {
			t.Errorf("in a batch, message %d: %v", i, err)
		}
	}
}

// batchHolds sums the terms of each key before it multiplies; that must
// not change a single verdict. ed25519consensus's batch check, which
// multiplies every term apart, is the oracle: for batches of a few keys,
// interleaved, with signatures, messages or keys spoiled here and there,
// the two agree.
func TestABatchWithEachKeysTermsSummedJudgesAsEd25519consensus(t *testing.T) {
	keys := make([]ed25519.PrivateKey, 4)
	for i := range keys {
		seed := sha512.Sum512([]byte{byte(i)})
		keys[i] = ed25519.NewKeyFromSeed(seed[:32])
	}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "n")
		nkeys := rapid.IntRange(1, len(keys)).Draw(t, "keys")
		sigs := make([]signature, n)
		for i := range sigs {
			key := keys[rapid.IntRange(0, nkeys-1).Draw(t, "key")]
			msg := []byte(rapid.StringN(0, 40, -1).Draw(t, "msg"))
			sg := signature{msg: msg, sig: ed25519.Sign(key, msg)}
			copy(sg.origin[:], key.Public().(ed25519.PublicKey))
			switch rapid.IntRange(0, 9).Draw(t, "spoil") {
			case 0: // a flipped bit of the signature
				sg.sig[rapid.IntRange(0, 63).Draw(t, "byte")] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
			case 1: // another message
				sg.msg = append(sg.msg, 'x')
			case 2: // another key
				copy(sg.origin[:], keys[(rapid.IntRange(1, len(keys)-1).Draw(t, "other"))].Public().(ed25519.PublicKey))
			case 3: // a short signature
				sg.sig = sg.sig[:63]
			}
			sigs[i] = sg
		}
		oracle := ed25519consensus.NewBatchVerifier()
		for _, sg := range sigs {
			oracle.Add(sg.origin.PublicKey(), sg.msg, sg.sig)
		}
		if got, want := batchHolds(sigs), oracle.Verify(); got != want {
			t.Fatalf("batchHolds = %v, ed25519consensus says %v", got, want)
		}
	})
}
