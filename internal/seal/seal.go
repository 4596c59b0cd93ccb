// Package seal encrypts a message so that only the holder of one node's
// identity key can read it: HPKE (RFC 9180) in base mode with
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20Poly1305, from the
// standard library's crypto/hpke.
//
// A node has one key, its ed25519 identity, and its ID is the public half.
// The X25519 key a message is sealed to is derived from it, as libsodium's
// crypto_sign_ed25519_pk_to_curve25519 and age's ssh-ed25519 recipients do:
// the public key by the birational map from the Edwards curve to the
// Montgomery curve, u = (1+y)/(1-y), and the private key as the clamped
// first half of SHA-512 of the ed25519 seed, the very scalar the ed25519
// key signs with. So anyone who knows a node's ID can seal to it, and no
// second key has to be announced, stored or trusted.
//
// Sealing does not say who sealed: base-mode HPKE is anonymous. Callers
// authenticate the sender another way (a signature over the sealed box)
// and bind the sender into info, so that a box cannot be lifted into a
// message that claims another sender.
package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha512"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// Overhead is how many bytes sealing adds to a plaintext: the
// encapsulated X25519 key and the AEAD tag.
const Overhead = 32 + 16

// ErrOpen is returned for a box that this key cannot open: sealed to
// another key, with other info, or altered.
var ErrOpen = errors.New("sealed message cannot be opened with this key")

func suite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.ChaCha20Poly1305() }

// X25519Public returns the X25519 public key that corresponds to an
// ed25519 public key. It fails for bytes that are not a point on the
// curve, and for the small-order points no honest key is.
func X25519Public(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("ed25519 public key: %w", err)
	}
	// A point of small order times the cofactor is the identity; it
	// would give every sender the same shared secret.
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, errors.New("ed25519 public key is a point of small order")
	}
	return p.BytesMontgomery(), nil
}

// X25519Private returns the X25519 private scalar of an ed25519 key: the
// clamped first half of SHA-512 of its seed.
func X25519Private(key ed25519.PrivateKey) []byte {
	h := sha512.Sum512(key.Seed())
	s := h[:32]
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return s
}

// Seal encrypts plaintext to the holder of the ed25519 key to. info binds
// the box to its context: Open must be given the same bytes.
func Seal(to ed25519.PublicKey, info, plaintext []byte) ([]byte, error) {
	u, err := X25519Public(to)
	if err != nil {
		return nil, err
	}
	xpub, err := ecdh.X25519().NewPublicKey(u)
	if err != nil {
		return nil, err
	}
	pk, err := hpke.NewDHKEMPublicKey(xpub)
	if err != nil {
		return nil, err
	}
	kdf, aead := suite()
	return hpke.Seal(pk, kdf, aead, info, plaintext)
}

// Open decrypts a box sealed to key's public half with the same info. It
// returns ErrOpen for anything else.
func Open(key ed25519.PrivateKey, info, box []byte) ([]byte, error) {
	if len(box) < Overhead {
		return nil, ErrOpen
	}
	xpriv, err := ecdh.X25519().NewPrivateKey(X25519Private(key))
	if err != nil {
		return nil, err
	}
	sk, err := hpke.NewDHKEMPrivateKey(xpriv)
	if err != nil {
		return nil, err
	}
	kdf, aead := suite()
	plain, err := hpke.Open(sk, kdf, aead, info, box)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
