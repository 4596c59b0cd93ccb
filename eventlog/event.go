package eventlog

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// NodeID is a node's ed25519 public key. It is the node's only identity:
// names are labels that anyone may pick, the key is what TLS proves.
type NodeID [ed25519.PublicKeySize]byte

// IDFromKey returns the NodeID of an ed25519 public key.
func IDFromKey(pub ed25519.PublicKey) (NodeID, error) {
	var id NodeID
	if len(pub) != len(id) {
		return id, fmt.Errorf("ed25519 public key has %d bytes, want %d", len(pub), len(id))
	}
	copy(id[:], pub)
	return id, nil
}

// ParseNodeID parses the 64-character lowercase hex form of a NodeID.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("node id %q: want %d hex characters", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("node id %q: %w", s, err)
	}
	return id, nil
}

// String returns the full form: 64 lowercase hex characters.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex characters, the form shown to people.
func (id NodeID) Short() string { return id.String()[:8] }

// IsZero reports whether id is unset.
func (id NodeID) IsZero() bool { return id == NodeID{} }

// PublicKey returns id as the ed25519 key it is.
func (id NodeID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(id[:]) }

// Less orders IDs bytewise; the lower ID's dial wins a simultaneous open.
func (id NodeID) Less(other NodeID) bool { return string(id[:]) < string(other[:]) }

// MarshalText encodes id as hex, so JSON shows it in its full form.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes the hex form.
func (id *NodeID) UnmarshalText(b []byte) error {
	parsed, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// Type names the kind of an event. The numeric values are stored in the
// log and must never be renumbered.
type Type uint8

// The event types. New types are appended at the end.
const (
	TypeJoin       Type = 1
	TypePeers      Type = 2
	TypeConnect    Type = 3
	TypeDisconnect Type = 4
	TypeDialFailed Type = 5
	TypeChat       Type = 6
	TypePrivate    Type = 7
	TypeNick       Type = 8
	TypeBan        Type = 9
	TypeUnban      Type = 10
	TypeDelivered  Type = 11
)

var typeNames = map[Type]string{
	TypeJoin:       "JOIN",
	TypePeers:      "PEERS",
	TypeConnect:    "CONNECT",
	TypeDisconnect: "DISCONNECT",
	TypeDialFailed: "DIAL_FAILED",
	TypeChat:       "CHAT",
	TypePrivate:    "PRIVATE",
	TypeNick:       "NICK",
	TypeBan:        "BAN",
	TypeUnban:      "UNBAN",
	TypeDelivered:  "DELIVERED",
	TypeSealed:     "SEALED",
	TypeAck:        "ACK",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE(%d)", uint8(t))
}

// Event is one entry of the log: what happened, when, and at which local
// sequence number. Seq and Time are assigned by Append.
type Event struct {
	Seq  uint64
	Time time.Time
	Body Body
}

// Body is the payload of an event; its dynamic type is one of the structs
// below.
type Body interface {
	Type() Type
}

// Limits that the vocabulary itself enforces, so that nothing larger can
// reach the log from any path.
const (
	MaxNameLen   = 32
	MaxTextLen   = 4096
	MaxAddrs     = 8
	MaxPeersList = 1000
	MaxAddrLen   = 255
)

// Join records a peer's introduction, as proven by its TLS key.
type Join struct {
	ID      NodeID   `json:"id"`
	Name    string   `json:"name"`
	Addrs   []string `json:"addrs"`
	Version int      `json:"version"`
}

// PeerInfo is one entry of a PEERS list: hearsay about another node.
type PeerInfo struct {
	ID    NodeID   `json:"id"`
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
}

// Peers records what a peer told us about other nodes.
type Peers struct {
	From  NodeID     `json:"from"`
	Peers []PeerInfo `json:"peers"`
	// Evicted names the hearsay rows this event removed from a full peer
	// table to make room for its entries (see Options.MaxPeers). The log
	// sets it as it stores the event; whatever a caller puts here is
	// ignored. Recorded in the event, so that replaying the log removes
	// exactly the same rows whatever the replaying node's options.
	Evicted []NodeID `json:"evicted,omitempty"`
}

// Connect records an established, authenticated connection.
type Connect struct {
	ID      NodeID `json:"id"`
	Addr    string `json:"addr"`
	Inbound bool   `json:"inbound"`
}

// Disconnect records the end of a connection.
type Disconnect struct {
	ID     NodeID `json:"id"`
	Reason string `json:"reason"`
}

// DialFailed records a failed attempt to reach a known peer.
type DialFailed struct {
	ID    NodeID `json:"id"`
	Addr  string `json:"addr"`
	Error string `json:"error"`
}

// Chat is a signed public line. (Origin, OriginSeq) identifies it across the
// whole network; the log holds each at most once.
type Chat struct {
	Origin     NodeID    `json:"origin"`
	OriginSeq  uint64    `json:"origin_seq"`
	OriginTime time.Time `json:"origin_time"`
	Name       string    `json:"name"`
	Text       string    `json:"text"`
	Sig        []byte    `json:"sig"`
	// Prev is the chain hash of the origin's message OriginSeq-1
	// (ChainHash), inside what Sig covers, or empty in a line that does
	// not chain (written before chains, or whose author did not hold its
	// previous message). See chain.go.
	Prev []byte `json:"prev,omitempty"`
}

// Nick is a signed rename. It shares the origin sequence space with Chat,
// so it travels, deduplicates and catches up the same way.
type Nick struct {
	Origin     NodeID    `json:"origin"`
	OriginSeq  uint64    `json:"origin_seq"`
	OriginTime time.Time `json:"origin_time"`
	Name       string    `json:"name"`
	Sig        []byte    `json:"sig"`
	// Prev chains the rename as Chat.Prev does.
	Prev []byte `json:"prev,omitempty"`
}

// Private is a direct message between two nodes, never relayed. The
// sender stores it before trying to deliver it, and keeps it in the
// recipient's outbox (in the peer table) until a Delivered event; the
// recipient stores it with Ref, the sender's sequence number of it, which
// makes a redelivery recognisable.
type Private struct {
	From     NodeID    `json:"from"`
	To       NodeID    `json:"to"`
	Name     string    `json:"name"`
	Text     string    `json:"text"`
	SentTime time.Time `json:"sent_time"`
	Ref      uint64    `json:"ref,omitempty"`
}

// Delivered records that the recipient acknowledged the private message
// stored here under Seq.
type Delivered struct {
	To  NodeID `json:"to"`
	Seq uint64 `json:"seq"`
}

// Ban records that a peer is refused until Until (zero: for good).
type Ban struct {
	ID     NodeID    `json:"id"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// Unban lifts a ban.
type Unban struct {
	ID NodeID `json:"id"`
}

func (Join) Type() Type       { return TypeJoin }
func (Peers) Type() Type      { return TypePeers }
func (Connect) Type() Type    { return TypeConnect }
func (Disconnect) Type() Type { return TypeDisconnect }
func (DialFailed) Type() Type { return TypeDialFailed }
func (Chat) Type() Type       { return TypeChat }
func (Nick) Type() Type       { return TypeNick }
func (Private) Type() Type    { return TypePrivate }
func (Ban) Type() Type        { return TypeBan }
func (Unban) Type() Type      { return TypeUnban }
func (Delivered) Type() Type  { return TypeDelivered }

// Signed is a message that carries its origin's signature and an origin
// sequence number: Chat, Nick, Sealed and Ack. Only this package's types
// are Signed, because only it knows what each one's signature covers.
type Signed interface {
	Body
	OriginKey() (NodeID, uint64)
	checkFields() error
	signature() signature
}

// OriginKey returns the network-wide identity of the line.
func (c Chat) OriginKey() (NodeID, uint64) { return c.Origin, c.OriginSeq }

// OriginKey returns the network-wide identity of the rename.
func (n Nick) OriginKey() (NodeID, uint64) { return n.Origin, n.OriginSeq }

// signingBytes is the canonical encoding a signature covers. It is fixed
// for protocol version 1: a domain tag, then every field in order, with
// lengths so that no two messages share an encoding.
func signingBytes(tag string, origin NodeID, seq uint64, t time.Time, fields ...string) []byte {
	size := len(tag) + 1 + len(origin) + 16
	for _, f := range fields {
		size += 4 + len(f)
	}
	b := make([]byte, 0, size)
	b = append(b, tag...)
	b = append(b, 0)
	b = append(b, origin[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// A chained line is signed under a tag of its own, with Prev as one more
// field, so that no unchained line shares its signed bytes.
func (c Chat) signingBytes() []byte {
	if len(c.Prev) > 0 {
		return signingBytes("p2pchat/chat/2", c.Origin, c.OriginSeq, c.OriginTime, c.Name, c.Text, string(c.Prev))
	}
	return signingBytes("p2pchat/chat/1", c.Origin, c.OriginSeq, c.OriginTime, c.Name, c.Text)
}

func (n Nick) signingBytes() []byte {
	if len(n.Prev) > 0 {
		return signingBytes("p2pchat/nick/2", n.Origin, n.OriginSeq, n.OriginTime, n.Name, string(n.Prev))
	}
	return signingBytes("p2pchat/nick/1", n.Origin, n.OriginSeq, n.OriginTime, n.Name)
}

// Sign sets Origin from key and signs the line.
func (c *Chat) Sign(key ed25519.PrivateKey) {
	copy(c.Origin[:], key.Public().(ed25519.PublicKey))
	c.Sig = ed25519.Sign(key, c.signingBytes())
}

// Verify checks the field limits and the signature against Origin
// (signature.go says by which rules).
func (c Chat) Verify() error { return VerifySigned(c) }

func (c Chat) checkFields() error {
	if err := CheckName(c.Name); err != nil {
		return err
	}
	if err := CheckText(c.Text); err != nil {
		return err
	}
	if c.OriginSeq == 0 {
		return errors.New("origin seq 0")
	}
	return checkPrev(c.OriginSeq, c.Prev)
}

func (c Chat) signature() signature { return signature{c.Origin, c.signingBytes(), c.Sig} }

// Sign sets Origin from key and signs the rename.
func (n *Nick) Sign(key ed25519.PrivateKey) {
	copy(n.Origin[:], key.Public().(ed25519.PublicKey))
	n.Sig = ed25519.Sign(key, n.signingBytes())
}

// Verify checks the name rules and the signature against Origin.
func (n Nick) Verify() error { return VerifySigned(n) }

func (n Nick) checkFields() error {
	if err := CheckName(n.Name); err != nil {
		return err
	}
	if n.OriginSeq == 0 {
		return errors.New("origin seq 0")
	}
	return checkPrev(n.OriginSeq, n.Prev)
}

func (n Nick) signature() signature { return signature{n.Origin, n.signingBytes(), n.Sig} }

// CheckName enforces the name rules: 1 to 32 printable characters, no
// spaces at either end, no '#' (reserved for name#shortid), and nothing
// invisible: no C1 control, bidi control or zero-width character (see
// names.go for why, and Skeleton for look-alike names).
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("name is empty")
	case len([]rune(name)) > MaxNameLen:
		return fmt.Errorf("name %q is longer than %d characters", name, MaxNameLen)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("name %q has spaces at an end", name)
	case strings.ContainsRune(name, '#'):
		return fmt.Errorf("name %q contains '#', which is reserved for name#id", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("name %q contains a control or invalid character", name)
		}
		if isHidden(r) {
			return fmt.Errorf("name %q contains an invisible character (U+%04X)", name, r)
		}
	}
	return nil
}

// CheckText enforces the chat text rules: at most 4096 bytes of valid
// UTF-8 with no control characters but tab, and no C1, bidi-control or
// zero-width characters but the two joiners that scripts and emoji need.
func CheckText(text string) error {
	if len(text) > MaxTextLen {
		return fmt.Errorf("text is %d bytes, the limit is %d", len(text), MaxTextLen)
	}
	for _, r := range text {
		if (r < 0x20 && r != '\t') || r == 0x7f || r == '\uFFFD' {
			return errors.New("text contains a control or invalid character")
		}
		if InvisibleInText(r) {
			return fmt.Errorf("text contains an invisible character (U+%04X)", r)
		}
	}
	return nil
}

// MarshalJSON flattens an event into one object: seq, time, type and the
// body's fields, as `p2pchat events --json` prints it.
func (e Event) MarshalJSON() ([]byte, error) {
	body, err := json.Marshal(e.Body)
	if err != nil {
		return nil, err
	}
	head, err := json.Marshal(struct {
		Seq  uint64    `json:"seq"`
		Time time.Time `json:"time"`
		Type string    `json:"type"`
	}{e.Seq, e.Time, e.Body.Type().String()})
	if err != nil {
		return nil, err
	}
	if len(body) <= 2 { // "{}"
		return head, nil
	}
	out := append(head[:len(head)-1], ',')
	return append(out, body[1:]...), nil
}

// String is the one-line human form of an event, as `p2pchat events`
// prints it.
func (e Event) String() string {
	head := fmt.Sprintf("%d %s %-11s", e.Seq, e.Time.Format(time.RFC3339), e.Body.Type())
	switch b := e.Body.(type) {
	case Join:
		return fmt.Sprintf("%s %s %q %s", head, b.ID.Short(), b.Name, strings.Join(b.Addrs, ","))
	case Peers:
		if len(b.Evicted) > 0 {
			return fmt.Sprintf("%s from %s, %d peers, %d evicted", head, b.From.Short(), len(b.Peers), len(b.Evicted))
		}
		return fmt.Sprintf("%s from %s, %d peers", head, b.From.Short(), len(b.Peers))
	case Connect:
		dir := "outbound"
		if b.Inbound {
			dir = "inbound"
		}
		return fmt.Sprintf("%s %s %s %s", head, b.ID.Short(), b.Addr, dir)
	case Disconnect:
		return fmt.Sprintf("%s %s: %s", head, b.ID.Short(), b.Reason)
	case DialFailed:
		return fmt.Sprintf("%s %s %s: %s", head, b.ID.Short(), b.Addr, b.Error)
	case Chat:
		return fmt.Sprintf("%s %s/%d <%s> %s", head, b.Origin.Short(), b.OriginSeq, b.Name, b.Text)
	case Nick:
		return fmt.Sprintf("%s %s/%d is now %s", head, b.Origin.Short(), b.OriginSeq, b.Name)
	case Private:
		return fmt.Sprintf("%s %s -> %s <%s> %s", head, b.From.Short(), b.To.Short(), b.Name, b.Text)
	case Ban:
		until := "for good"
		if !b.Until.IsZero() {
			until = "until " + b.Until.Format(time.RFC3339)
		}
		return fmt.Sprintf("%s %s %s: %s", head, b.ID.Short(), until, b.Reason)
	case Unban:
		return fmt.Sprintf("%s %s", head, b.ID.Short())
	case Delivered:
		return fmt.Sprintf("%s %s got %d", head, b.To.Short(), b.Seq)
	case Sealed:
		return fmt.Sprintf("%s %s/%d <%s> to %s: sealed, %d bytes", head, b.Origin.Short(), b.OriginSeq, b.Name, b.To.Short(), len(b.Box))
	case Ack:
		return fmt.Sprintf("%s %s/%d has %s/%d", head, b.Origin.Short(), b.OriginSeq, b.To.Short(), b.Ref)
	}
	return head
}

// CheckAddr enforces the address rules, wherever an address comes from (a
// peer's JOIN or PEERS, --peer, /connect): at most MaxAddrLen bytes,
// HOST:PORT with a host free of spaces and control characters and a
// numeric port from 1 to 65535, what net.Dial("tcp", addr) can use.
func CheckAddr(addr string) error {
	quoted := addr
	if utf8.RuneCountInString(quoted) > 32 {
		quoted = string([]rune(quoted)[:32]) + "…" // keep the message one readable line
	}
	if len(addr) > MaxAddrLen {
		return fmt.Errorf("address %q: %d bytes, limit %d", quoted, len(addr), MaxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// net's message repeats the address unquoted; give only its reason.
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("address %q: %s", quoted, ae.Err)
		}
		return fmt.Errorf("address %q: %v", quoted, err)
	}
	if host == "" {
		return fmt.Errorf("address %q: host is empty", quoted)
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == utf8.RuneError }) {
		return fmt.Errorf("address %q: host has a space, control or invalid character", quoted)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("address %q: port must be a number from 1 to 65535", quoted)
	}
	return nil
}
