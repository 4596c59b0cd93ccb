package eventlog

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"testing"
	"time"

	"filippo.io/edwards25519"
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
