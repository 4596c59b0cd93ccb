package peering

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// Private networks. A node configured with a network key speaks to no one
// who cannot prove the same key. Right after TLS, and before JOIN, each
// keyed side sends AUTH with a proof:
//
//	proof = HMAC-SHA256(key, exporter || sender's node ID)
//
// where exporter is the TLS exporter value of this very connection for
// the label "p2pchat network key" (RFC 8446, section 7.5). The proof is
// bound to the connection's secrets and to the sender's ID, so it cannot
// be replayed on another connection, reflected back at its sender, or
// lifted by a node that merely relays bytes. The receiver recomputes it
// with the sender's ID, as TLS proved it, and compares in constant time.
//
// A keyed node reads the first frame of the peer before it sends JOIN: if
// that is not AUTH with a valid proof, it sends GOODBYE ("network key
// mismatch") and closes. An outsider therefore never learns the node's
// name, its peers or anything said, and nothing about the outsider is
// stored. A node without a key sends JOIN first as always; meeting AUTH
// where it expects JOIN, it gives up the connection and logs that the peer
// requires a key. Without a key the network stays open: such a node never
// sends AUTH and accepts any peer that sends JOIN.

// MinNetworkKey is the shortest network key accepted, in bytes.
const MinNetworkKey = 16

// networkKeyLabel is the TLS exporter label of the proof.
const networkKeyLabel = "p2pchat network key"

// goodbyeKeyMismatch is the GOODBYE reason a keyed node gives a peer that
// failed the proof.
const goodbyeKeyMismatch = "network key mismatch"

// Why a handshake on a private network fails.
var (
	errNoNetworkKey    = errors.New("peer lacks the network key")
	errWrongNetworkKey = errors.New("wrong network key")
	errPeerNeedsKey    = errors.New("peer requires a network key and this node has none")
)

// CheckNetworkKey reports whether key can serve as a network key; nil
// (no key) is fine.
func CheckNetworkKey(key []byte) error {
	if key != nil && len(key) < MinNetworkKey {
		return fmt.Errorf("network key has %d bytes, want at least %d", len(key), MinNetworkKey)
	}
	return nil
}

// networkProof is the proof that the node id holds key, on the TLS
// connection whose state is cs.
func networkProof(key []byte, cs tls.ConnectionState, id eventlog.NodeID) ([]byte, error) {
	ekm, err := cs.ExportKeyingMaterial(networkKeyLabel, nil, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("network key proof: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(ekm)
	mac.Write(id[:])
	return mac.Sum(nil), nil
}

// beforeJoin runs between the TLS handshake and JOIN, on the handshake's
// deadline. It refuses a penalized or banned peer, and on a private network
// exchanges AUTH and refuses a peer without a valid proof; in both cases
// the peer is told why in a GOODBYE and learns nothing else.
func (n *Node) beforeJoin(tc *tls.Conn, fr *wire.FrameReader, id eventlog.NodeID) error {
	if until, ok := n.penalties.active(id, time.Now()); ok {
		writeGoodbye(tc, errPenalized.Error())
		return fmt.Errorf("refused %s: %w until %s", id.Short(), errPenalized, until.Format(time.TimeOnly))
	}
	if n.isBanned(id) {
		// Refused before JOIN, the banned node's dial fails and its
		// redials back off, instead of connecting (and showing this node
		// joining and leaving) once a second for good.
		writeGoodbye(tc, errBanned.Error())
		return fmt.Errorf("refused %s: %w", id.Short(), errBanned)
	}
	key := n.cfg.NetworkKey
	if len(key) == 0 {
		return nil
	}
	cs := tc.ConnectionState()
	own, err := networkProof(key, cs, n.self)
	if err != nil {
		return err
	}
	frame, err := wire.EncodeFrame(wire.FrameAuth, wire.AuthMsg{Proof: hex.EncodeToString(own)}, n.cfg.MaxFrame)
	if err != nil {
		return err
	}
	if _, err := tc.Write(frame); err != nil {
		return fmt.Errorf("send AUTH: %w", err)
	}
	typ, payload, err := fr.Next()
	if err != nil {
		return fmt.Errorf("read AUTH from %s: %w", id.Short(), err)
	}
	refuse := func(why error) error {
		writeGoodbye(tc, goodbyeKeyMismatch)
		return fmt.Errorf("%s: %w", id.Short(), why)
	}
	switch typ {
	case wire.FrameAuth:
	case wire.FrameGoodbye:
		return fmt.Errorf("%s: %w", id.Short(), goodbyeFrom(payload))
	default:
		return refuse(errNoNetworkKey)
	}
	var msg wire.AuthMsg
	if err := wire.DecodeStrict(payload, &msg); err != nil {
		return refuse(fmt.Errorf("%w: AUTH: %v", errWrongNetworkKey, err))
	}
	got, err := hex.DecodeString(msg.Proof)
	if err != nil {
		return refuse(fmt.Errorf("%w: proof is not hex", errWrongNetworkKey))
	}
	want, err := networkProof(key, cs, id)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, want) {
		return refuse(errWrongNetworkKey)
	}
	return nil
}

// notJoin explains a first frame other than JOIN from the peer id.
func notJoin(id eventlog.NodeID, typ string, payload []byte) error {
	switch typ {
	case wire.FrameAuth:
		return fmt.Errorf("%s: %w", id.Short(), errPeerNeedsKey)
	case wire.FrameGoodbye:
		return fmt.Errorf("%s: %w", id.Short(), goodbyeFrom(payload))
	}
	return fmt.Errorf("first frame from %s is %s, want JOIN", id.Short(), typ)
}

// maxGoodbyeReason bounds what is kept of a peer's GOODBYE reason, which
// is logged and stored in the DISCONNECT event.
const maxGoodbyeReason = 128

// goodbyeFrom turns a GOODBYE payload into the error a connection ends
// with. The reason is the peer's text: control characters (newlines,
// terminal escapes) are dropped and its length is bounded, so that it can
// neither forge lines in the log and its readers nor grow the log.
func goodbyeFrom(payload []byte) error {
	var bye wire.GoodbyeMsg
	if err := wire.DecodeStrict(payload, &bye); err != nil {
		bye.Reason = "malformed GOODBYE"
	}
	reason := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, bye.Reason)
	if len(reason) > maxGoodbyeReason {
		reason = strings.ToValidUTF8(reason[:maxGoodbyeReason], "")
	}
	return errGoodbye{reason: reason}
}

// writeGoodbye tells a peer refused during the handshake why, on the
// handshake's deadline; whether it arrives does not matter.
func writeGoodbye(tc *tls.Conn, reason string) {
	frame, err := wire.EncodeFrame(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: reason}, 0)
	if err == nil {
		_, _ = tc.Write(frame)
	}
}
