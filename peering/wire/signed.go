package wire

import (
	"errors"
	"fmt"

	"github.com/p2pchat/p2pchat/eventlog"
)

// DecodeSigned parses a CHAT, NICK, SEALED, ACK or CATCHUP payload.
func DecodeSigned(typ string, payload []byte) (eventlog.Signed, error) {
	switch typ {
	case FrameChat:
		var m ChatMsg
		if err := DecodeStrict(payload, &m); err != nil {
			return nil, fmt.Errorf("CHAT: %w", err)
		}
		return m.Event(), nil
	case FrameNick:
		var m NickMsg
		if err := DecodeStrict(payload, &m); err != nil {
			return nil, fmt.Errorf("NICK: %w", err)
		}
		return m.Event(), nil
	case FrameSealed, FrameAck:
		return decodePrivate(typ, payload)
	case FrameCatchup:
		var m CatchupMsg
		if err := DecodeStrict(payload, &m); err != nil {
			return nil, fmt.Errorf("CATCHUP: %w", err)
		}
		set := 0
		for _, present := range []bool{m.Chat != nil, m.Nick != nil, m.Sealed != nil, m.Ack != nil} {
			if present {
				set++
			}
		}
		switch {
		case set != 1:
		case m.Chat != nil:
			return m.Chat.Event(), nil
		case m.Nick != nil:
			return m.Nick.Event(), nil
		case m.Sealed != nil:
			return m.Sealed.Event(), nil
		case m.Ack != nil:
			return m.Ack.Event(), nil
		}
		return nil, errors.New("CATCHUP: want exactly one of chat, nick, sealed and ack")
	}
	return nil, fmt.Errorf("%s is not a signed message", typ)
}

// SignedFrame is the CHAT, NICK, SEALED or ACK frame that carries body.
func SignedFrame(body eventlog.Body, maxFrame int) ([]byte, error) {
	switch b := body.(type) {
	case eventlog.Chat:
		return EncodeFrame(FrameChat, ChatFromEvent(b), maxFrame)
	case eventlog.Nick:
		return EncodeFrame(FrameNick, NickFromEvent(b), maxFrame)
	case eventlog.Sealed:
		return EncodeFrame(FrameSealed, SealedFromEvent(b), maxFrame)
	case eventlog.Ack:
		return EncodeFrame(FrameAck, AckFromEvent(b), maxFrame)
	}
	return nil, fmt.Errorf("%T is not a signed message", body)
}

// CatchupFrame is the CATCHUP frame that carries m.
func CatchupFrame(m eventlog.Signed, maxFrame int) ([]byte, error) {
	var msg CatchupMsg
	switch b := m.(type) {
	case eventlog.Chat:
		c := ChatFromEvent(b)
		msg.Chat = &c
	case eventlog.Nick:
		n := NickFromEvent(b)
		msg.Nick = &n
	case eventlog.Sealed:
		s := SealedFromEvent(b)
		msg.Sealed = &s
	case eventlog.Ack:
		a := AckFromEvent(b)
		msg.Ack = &a
	default:
		return nil, fmt.Errorf("%T is not a signed message", m)
	}
	return EncodeFrame(FrameCatchup, msg, maxFrame)
}
