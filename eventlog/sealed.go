package eventlog

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/p2pchat/p2pchat/internal/seal"
)

// Private messages. A Sealed message is a signed message of its sender,
// numbered in the sender's origin sequence like Chat and Nick, so it is
// relayed by every node, stored once, deduplicated and caught up by the
// same machinery, through any chain of peers and with either end offline.
// Its text is sealed twice: in Box to the recipient, in Own to the sender
// (so the sender can show what it sent, from any copy of the message).
// Every node that carries it learns who wrote to whom, when, and how long
// the text is about; only the two ends can read it.
//
// The recipient answers with an Ack, signed and numbered in its own origin
// sequence, which travels back the same way.

// The private message types.
const (
	TypeSealed Type = 12
	TypeAck    Type = 13
)

// MaxBoxLen bounds a sealed copy of a text: the longest text and what
// sealing adds.
const MaxBoxLen = MaxTextLen + seal.Overhead

// Sealed is a private message. (Origin, OriginSeq) identifies it across the
// network, as for Chat.
type Sealed struct {
	Origin     NodeID    `json:"origin"`
	OriginSeq  uint64    `json:"origin_seq"`
	OriginTime time.Time `json:"origin_time"`
	Name       string    `json:"name"`
	To         NodeID    `json:"to"`
	Box        []byte    `json:"box"` // the text sealed to To
	Own        []byte    `json:"own"` // the text sealed to Origin
	Sig        []byte    `json:"sig"`
}

// Ack says that Origin, the recipient of the Sealed message (To, Ref), has
// stored and shown it.
type Ack struct {
	Origin     NodeID    `json:"origin"`
	OriginSeq  uint64    `json:"origin_seq"`
	OriginTime time.Time `json:"origin_time"`
	To         NodeID    `json:"to"`
	Ref        uint64    `json:"ref"`
	Sig        []byte    `json:"sig"`
}

func (Sealed) Type() Type { return TypeSealed }
func (Ack) Type() Type    { return TypeAck }

// OriginKey returns the network-wide identity of the message.
func (s Sealed) OriginKey() (NodeID, uint64) { return s.Origin, s.OriginSeq }

// OriginKey returns the network-wide identity of the acknowledgement.
func (a Ack) OriginKey() (NodeID, uint64) { return a.Origin, a.OriginSeq }

// sealInfo binds a box to its sender and recipient, and to which of the
// two copies it is: a box lifted into a message signed by someone else, or
// moved from one field to the other, no longer opens.
func sealInfo(from, to NodeID, own bool) []byte {
	tag := "p2pchat/sealed/1/to"
	if own {
		tag = "p2pchat/sealed/1/own"
	}
	b := append([]byte(tag), 0)
	b = append(b, from[:]...)
	return append(b, to[:]...)
}

// NewSealed seals text from the holder of key to the node to. The log
// numbers, stamps and signs it when it is appended.
func NewSealed(key ed25519.PrivateKey, to NodeID, name, text string) (Sealed, error) {
	if err := CheckText(text); err != nil {
		return Sealed{}, err
	}
	from, err := IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return Sealed{}, err
	}
	s := Sealed{Origin: from, Name: name, To: to}
	if s.Box, err = seal.Seal(to.PublicKey(), sealInfo(from, to, false), []byte(text)); err != nil {
		return Sealed{}, fmt.Errorf("seal to %s: %w", to.Short(), err)
	}
	if s.Own, err = seal.Seal(from.PublicKey(), sealInfo(from, to, true), []byte(text)); err != nil {
		return Sealed{}, fmt.Errorf("seal own copy: %w", err)
	}
	return s, nil
}

// ErrNotForMe is returned by Open for a message neither from nor to the
// key's holder.
var ErrNotForMe = errors.New("private message is for someone else")

// Open returns the text of a message to or from the holder of key. It
// fails for anyone else, for a box altered on the way, and for a box that
// was sealed for another sender or recipient; a text that breaks the text
// rules is refused too, so what Open returns may be shown.
func (s Sealed) Open(key ed25519.PrivateKey) (string, error) {
	self, err := IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return "", err
	}
	var plain []byte
	switch self {
	case s.To:
		plain, err = seal.Open(key, sealInfo(s.Origin, s.To, false), s.Box)
	case s.Origin:
		plain, err = seal.Open(key, sealInfo(s.Origin, s.To, true), s.Own)
	default:
		return "", ErrNotForMe
	}
	if err != nil {
		return "", err
	}
	if err := CheckText(string(plain)); err != nil {
		return "", fmt.Errorf("sealed text: %w", err)
	}
	return string(plain), nil
}

func (s Sealed) signingBytes() []byte {
	return signingBytes("p2pchat/sealed/1", s.Origin, s.OriginSeq, s.OriginTime, s.Name, string(s.To[:]), string(s.Box), string(s.Own))
}

func (a Ack) signingBytes() []byte {
	return signingBytes("p2pchat/ack/1", a.Origin, a.OriginSeq, a.OriginTime, string(a.To[:]), string(binary.BigEndian.AppendUint64(nil, a.Ref)))
}

// Sign sets Origin from key and signs the message.
func (s *Sealed) Sign(key ed25519.PrivateKey) {
	copy(s.Origin[:], key.Public().(ed25519.PublicKey))
	s.Sig = ed25519.Sign(key, s.signingBytes())
}

// Sign sets Origin from key and signs the acknowledgement.
func (a *Ack) Sign(key ed25519.PrivateKey) {
	copy(a.Origin[:], key.Public().(ed25519.PublicKey))
	a.Sig = ed25519.Sign(key, a.signingBytes())
}

// Verify checks the size limits and the signature against Origin. It
// cannot check the boxes: only the two ends can open them.
func (s Sealed) Verify() error { return VerifySigned(s) }

func (s Sealed) checkFields() error {
	if err := CheckName(s.Name); err != nil {
		return err
	}
	if s.OriginSeq == 0 {
		return errors.New("origin seq 0")
	}
	if s.To.IsZero() || s.To == s.Origin {
		return errors.New("private message without another recipient")
	}
	for _, box := range [][]byte{s.Box, s.Own} {
		if len(box) < seal.Overhead || len(box) > MaxBoxLen {
			return fmt.Errorf("sealed text of %d bytes, want %d to %d", len(box), seal.Overhead, MaxBoxLen)
		}
	}
	return nil
}

func (s Sealed) signature() signature { return signature{s.Origin, s.signingBytes(), s.Sig} }

// Verify checks the signature against Origin.
func (a Ack) Verify() error { return VerifySigned(a) }

func (a Ack) checkFields() error {
	if a.OriginSeq == 0 || a.Ref == 0 {
		return errors.New("origin seq 0")
	}
	if a.To.IsZero() || a.To == a.Origin {
		return errors.New("acknowledgement without another recipient")
	}
	return nil
}

func (a Ack) signature() signature { return signature{a.Origin, a.signingBytes(), a.Sig} }
