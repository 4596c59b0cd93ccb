package wire

import (
	"fmt"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Frame types of private messages.
const (
	FrameSealed = "SEALED"
	FrameAck    = "ACK"
	// FramePrivAck (with FramePrivate) is the direct-delivery protocol of
	// older releases: unsealed, over a direct connection only. Both are
	// ignored like any unknown frame; such a peer's messages reach this
	// node no more, while its chat lines still do.
	FramePrivAck = "PRIVACK"
)

// SealedMsg is the payload of SEALED and carries exactly the fields the
// signature covers.
type SealedMsg struct {
	Origin eventlog.NodeID `json:"origin"`
	Seq    uint64          `json:"seq"`
	Time   int64           `json:"time"` // unix nanoseconds, as in ChatMsg
	Name   string          `json:"name"`
	To     eventlog.NodeID `json:"to"`
	Box    []byte          `json:"box"`
	Own    []byte          `json:"own"`
	Sig    []byte          `json:"sig"`
}

// AckMsg is the payload of ACK.
type AckMsg struct {
	Origin eventlog.NodeID `json:"origin"`
	Seq    uint64          `json:"seq"`
	Time   int64           `json:"time"`
	To     eventlog.NodeID `json:"to"`
	Ref    uint64          `json:"ref"`
	Sig    []byte          `json:"sig"`
}

// SealedFromEvent returns the wire form of a private message.
func SealedFromEvent(s eventlog.Sealed) SealedMsg {
	return SealedMsg{Origin: s.Origin, Seq: s.OriginSeq, Time: wireTime(s.OriginTime), Name: s.Name, To: s.To, Box: s.Box, Own: s.Own, Sig: s.Sig}
}

// Event returns the private message; call Verify on it before trusting it.
func (m SealedMsg) Event() eventlog.Sealed {
	return eventlog.Sealed{Origin: m.Origin, OriginSeq: m.Seq, OriginTime: time.Unix(0, m.Time), Name: m.Name, To: m.To, Box: m.Box, Own: m.Own, Sig: m.Sig}
}

// AckFromEvent returns the wire form of an acknowledgement.
func AckFromEvent(a eventlog.Ack) AckMsg {
	return AckMsg{Origin: a.Origin, Seq: a.OriginSeq, Time: wireTime(a.OriginTime), To: a.To, Ref: a.Ref, Sig: a.Sig}
}

// Event returns the acknowledgement; call Verify on it before trusting it.
func (m AckMsg) Event() eventlog.Ack {
	return eventlog.Ack{Origin: m.Origin, OriginSeq: m.Seq, OriginTime: time.Unix(0, m.Time), To: m.To, Ref: m.Ref, Sig: m.Sig}
}

// decodePrivate parses a SEALED or ACK payload.
func decodePrivate(typ string, payload []byte) (eventlog.Signed, error) {
	switch typ {
	case FrameSealed:
		var m SealedMsg
		if err := DecodeStrict(payload, &m); err != nil {
			return nil, fmt.Errorf("SEALED: %w", err)
		}
		return m.Event(), nil
	case FrameAck:
		var m AckMsg
		if err := DecodeStrict(payload, &m); err != nil {
			return nil, fmt.Errorf("ACK: %w", err)
		}
		return m.Event(), nil
	}
	return nil, fmt.Errorf("%s is not a private message", typ)
}
