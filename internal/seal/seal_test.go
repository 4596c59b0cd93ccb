package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pub(key ed25519.PrivateKey) ed25519.PublicKey { return key.Public().(ed25519.PublicKey) }

func TestSealedMessageOpensWithTheRecipientsKey(t *testing.T) {
	carol := newKey(t)
	box, err := Seal(pub(carol), []byte("ctx"), []byte("meet at noon"))
	if err != nil {
		t.Fatal(err)
	}
	if len(box) != len("meet at noon")+Overhead {
		t.Errorf("box is %d bytes, want plaintext + %d", len(box), Overhead)
	}
	if bytes.Contains(box, []byte("noon")) {
		t.Error("box holds the plaintext")
	}
	plain, err := Open(carol, []byte("ctx"), box)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != "meet at noon" {
		t.Errorf("opened %q", plain)
	}
}

func TestSealedMessageDoesNotOpenForAnotherKey(t *testing.T) {
	carol, bob := newKey(t), newKey(t)
	box, err := Seal(pub(carol), []byte("ctx"), []byte("for carol"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bob, []byte("ctx"), box); !errors.Is(err, ErrOpen) {
		t.Errorf("another key opened it: %v", err)
	}
}

func TestSealedMessageDoesNotOpenInAnotherContext(t *testing.T) {
	carol := newKey(t)
	box, err := Seal(pub(carol), []byte("from alice"), []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(carol, []byte("from mallory"), box); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with other info: %v", err)
	}
}

func TestAlteredBoxDoesNotOpen(t *testing.T) {
	carol := newKey(t)
	box, err := Seal(pub(carol), nil, []byte("untouched"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range box {
		bad := bytes.Clone(box)
		bad[i] ^= 0x01
		if _, err := Open(carol, nil, bad); !errors.Is(err, ErrOpen) {
			t.Fatalf("flipping a bit of byte %d: %v", i, err)
		}
	}
	for _, cut := range []int{0, 1, Overhead - 1, len(box) - 1} {
		if _, err := Open(carol, nil, box[:cut]); !errors.Is(err, ErrOpen) {
			t.Errorf("box cut to %d bytes: %v", cut, err)
		}
	}
}

// The vector of libsodium's test/default/ed25519_convert.c (with its .exp
// file): the ed25519 key from that seed converts to this X25519 key pair.
func TestKeyConversionMatchesLibsodium(t *testing.T) {
	seed, _ := hex.DecodeString("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee")
	key := ed25519.NewKeyFromSeed(seed)
	wantPub := "f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50"
	wantPriv := "8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166"
	u, err := X25519Public(pub(key))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(u); got != wantPub {
		t.Errorf("public: %s, want %s", got, wantPub)
	}
	if got := hex.EncodeToString(X25519Private(key)); got != wantPriv {
		t.Errorf("private: %s, want %s", got, wantPriv)
	}
}

// The map itself, computed apart from the library with big integers:
// u = (1+y)/(1-y) mod 2^255-19, and the private scalar's X25519 public key
// is that same u, for random keys.
func TestKeyConversionAgreesWithTheFormula(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	for range 20 {
		key := newKey(t)
		le := bytes.Clone(pub(key))
		le[31] &= 0x7f // the top bit is the sign of x
		y := new(big.Int).SetBytes(reverse(le))
		num := new(big.Int).Add(big.NewInt(1), y)
		den := new(big.Int).Sub(big.NewInt(1), y)
		den.Mod(den, p)
		want := num.Mul(num, den.ModInverse(den, p))
		want.Mod(want, p)

		u, err := X25519Public(pub(key))
		if err != nil {
			t.Fatal(err)
		}
		if got := new(big.Int).SetBytes(reverse(bytes.Clone(u))); got.Cmp(want) != 0 {
			t.Fatalf("u = %x, formula gives %x", got, want)
		}
		priv, err := ecdh.X25519().NewPrivateKey(X25519Private(key))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(priv.PublicKey().Bytes(), u) {
			t.Fatal("private scalar does not match the converted public key")
		}
	}
}

func TestSmallOrderKeyIsRefused(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1 // y = 1: the neutral element
	if _, err := Seal(identity, nil, []byte("x")); err == nil {
		t.Error("sealed to the identity point")
	}
	if _, err := Seal(make([]byte, 31), nil, []byte("x")); err == nil {
		t.Error("sealed to a short key")
	}
}

func reverse(b []byte) []byte {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}
