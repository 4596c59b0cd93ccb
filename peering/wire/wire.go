package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// ProtocolVersion is the wire protocol version this node speaks and sends in
// its JOIN. Version 3 added Prev to CHAT and NICK (chained lines); a peer
// of an older version refuses a payload with a field it does not know, so
// a chained line is never sent to it (MinVersion). Version 4 added LINES
// (FrameLines), which carries a run of one origin's chained lines in
// answer to SYNC in about half the bytes of their CATCHUP frames; it is
// sent only to peers of version 4 or later, older ones get CATCHUP.
const ProtocolVersion = 4

// MinVersion is the lowest protocol version of a peer that can read the
// frame carrying body: 3 for a chained Chat or Nick, whose signature
// covers Prev, which an older peer can neither decode nor check; 1 for
// anything else.
func MinVersion(body eventlog.Body) int {
	switch b := body.(type) {
	case eventlog.Chat:
		if len(b.Prev) > 0 {
			return 3
		}
	case eventlog.Nick:
		if len(b.Prev) > 0 {
			return 3
		}
	}
	return 1
}

// JoinMsg is the payload of JOIN, the first frame each way. The ID must
// equal the key the peer proved in the TLS handshake; the caller checks that
// against PeerID.
type JoinMsg struct {
	Version int             `json:"version"`
	ID      eventlog.NodeID `json:"id"`
	Name    string          `json:"name"`
	// Port is the listen port, so that the receiver can pair it with the
	// address it observed, which is often the only one that works.
	Port int `json:"port"`
	// Addrs are listen addresses the sender believes reachable.
	Addrs []string `json:"addrs,omitempty"`
	// Full says the sender has no room for another peer: it will send
	// PEERS, so the newcomer learns whom else to dial, then GOODBYE. The
	// newcomer does not count it as connected.
	Full bool `json:"full,omitempty"`
}

// Validate checks the fields against the protocol's rules, with at most
// maxAddrs addresses, so that nothing a peer claims reaches the log or the
// dialer unchecked.
func (m JoinMsg) Validate(maxAddrs int) error {
	if m.Version < 1 {
		return fmt.Errorf("join: version %d, want at least 1", m.Version)
	}
	if m.ID.IsZero() {
		return errors.New("join: node id is missing")
	}
	if err := eventlog.CheckName(m.Name); err != nil {
		return fmt.Errorf("join from %s: %w", m.ID.Short(), err)
	}
	if m.Port < 1 || m.Port > 65535 {
		return fmt.Errorf("join from %s: port %d is outside 1-65535", m.ID.Short(), m.Port)
	}
	if err := validateAddrs(m.Addrs, maxAddrs); err != nil {
		return fmt.Errorf("join from %s: %w", m.ID.Short(), err)
	}
	return nil
}

// PeersMsg is the payload of PEERS: what the sender knows about other nodes,
// for the receiver to dial.
type PeersMsg struct {
	Peers []PeerEntry `json:"peers"`
}

// PeerEntry is one node in a PEERS list. It is hearsay: the ID is proven
// only when the receiver connects.
type PeerEntry struct {
	ID    eventlog.NodeID `json:"id"`
	Name  string          `json:"name"`
	Addrs []string        `json:"addrs"`
}

// Validate checks the list against the protocol's rules, with at most
// maxEntries peers of at most maxAddrs addresses each. An entry without
// addresses is valid: it names a node the sender knows only by its inbound
// connection.
func (m PeersMsg) Validate(maxEntries, maxAddrs int) error {
	if len(m.Peers) > maxEntries {
		return fmt.Errorf("peers: %d entries, limit %d", len(m.Peers), maxEntries)
	}
	for i, p := range m.Peers {
		if p.ID.IsZero() {
			return fmt.Errorf("peers: entry %d: node id is missing", i)
		}
		if err := eventlog.CheckName(p.Name); err != nil {
			return fmt.Errorf("peers: entry %d (%s): %w", i, p.ID.Short(), err)
		}
		if err := validateAddrs(p.Addrs, maxAddrs); err != nil {
			return fmt.Errorf("peers: entry %d (%s): %w", i, p.ID.Short(), err)
		}
	}
	return nil
}

// validateAddrs checks a list of dialable host:port addresses.
func validateAddrs(addrs []string, maxAddrs int) error {
	if len(addrs) > maxAddrs {
		return fmt.Errorf("%d addresses, limit %d", len(addrs), maxAddrs)
	}
	for _, a := range addrs {
		if err := eventlog.CheckAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// ChatMsg is the payload of CHAT, a signed public line. It carries exactly
// the fields the signature covers, so that a relay forwards it unchanged and
// every receiver can verify it.
type ChatMsg struct {
	Origin eventlog.NodeID `json:"origin"`
	Seq    uint64          `json:"seq"`
	// Time is in unix nanoseconds, the form the signature covers, so no
	// rounding can break it on the way.
	Time int64  `json:"time"`
	Name string `json:"name"`
	Text string `json:"text"`
	Sig  []byte `json:"sig"`
	// Prev is the chain hash of the origin's line before (version 3),
	// absent in a line that does not chain.
	Prev []byte `json:"prev,omitempty"`
}

// ChatFromEvent returns the wire form of a chat event. The signature is
// shared, not copied.
func ChatFromEvent(c eventlog.Chat) ChatMsg {
	return ChatMsg{
		Origin: c.Origin,
		Seq:    c.OriginSeq,
		Time:   wireTime(c.OriginTime),
		Name:   c.Name,
		Text:   c.Text,
		Sig:    c.Sig,
		Prev:   c.Prev,
	}
}

// wireTime is t in unix nanoseconds. The log stores the epoch and the zero
// time alike and reads both back as the zero time, whose UnixNano is not
// 0; a message an origin signed with time 0 must go out as 0 again, or its
// signature fails at every node it is caught up to.
func wireTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Event returns the chat event the message carries; call Verify on it
// before trusting it.
func (m ChatMsg) Event() eventlog.Chat {
	return eventlog.Chat{
		Origin:     m.Origin,
		OriginSeq:  m.Seq,
		OriginTime: time.Unix(0, m.Time),
		Name:       m.Name,
		Text:       m.Text,
		Sig:        m.Sig,
		Prev:       m.Prev,
	}
}

// NickMsg is the payload of NICK, a signed rename. It shares the origin
// sequence space with CHAT and travels the same way.
type NickMsg struct {
	Origin eventlog.NodeID `json:"origin"`
	Seq    uint64          `json:"seq"`
	// Time is in unix nanoseconds, as in ChatMsg.
	Time int64  `json:"time"`
	Name string `json:"name"`
	Sig  []byte `json:"sig"`
	// Prev chains the rename as ChatMsg.Prev does.
	Prev []byte `json:"prev,omitempty"`
}

// NickFromEvent returns the wire form of a rename event. The signature is
// shared, not copied.
func NickFromEvent(n eventlog.Nick) NickMsg {
	return NickMsg{
		Origin: n.Origin,
		Seq:    n.OriginSeq,
		Time:   wireTime(n.OriginTime),
		Name:   n.Name,
		Sig:    n.Sig,
		Prev:   n.Prev,
	}
}

// Event returns the rename event the message carries; call Verify on it
// before trusting it.
func (m NickMsg) Event() eventlog.Nick {
	return eventlog.Nick{
		Origin:     m.Origin,
		OriginSeq:  m.Seq,
		OriginTime: time.Unix(0, m.Time),
		Name:       m.Name,
		Sig:        m.Sig,
		Prev:       m.Prev,
	}
}

// PingMsg is the payload of PING and of the PONG that answers it with the
// same nonce, so that a late PONG cannot count for a newer PING.
type PingMsg struct {
	Nonce uint64 `json:"nonce"`
}

// GoodbyeMsg is the payload of GOODBYE, sent before a deliberate close so
// that the other side can log why and decide whether to redial.
type GoodbyeMsg struct {
	Reason string `json:"reason"`
}
