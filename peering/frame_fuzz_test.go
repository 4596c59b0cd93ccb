package peering

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
)

// FuzzFrame feeds arbitrary bytes to the frame reader and the decoders of
// the frames that reach the log, as a hostile peer could.
func FuzzFrame(f *testing.F) {
	chat := wireTestChat(f, "hello <world> & 🙂")
	join := JoinMsg{Version: ProtocolVersion, ID: wireTestID(1), Name: "Alice", Port: 8080,
		Addrs: []string{"192.0.2.1:8080", "[2001:db8::1]:8080"}}
	peers := PeersMsg{Peers: []PeerEntry{
		{ID: wireTestID(2), Name: "Bob", Addrs: []string{"192.0.2.2:8081"}},
		{ID: wireTestID(3), Name: "Carol"},
	}}
	var session []byte
	for _, fr := range []struct {
		typ string
		v   any
	}{
		{FrameJoin, join}, {FramePeers, peers}, {FrameChat, ChatFromEvent(chat)},
		{FramePing, PingMsg{Nonce: 1}}, {FrameGoodbye, GoodbyeMsg{Reason: "bye"}},
	} {
		frame, err := EncodeFrame(fr.typ, fr.v, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
		session = append(session, frame...)
	}
	f.Add(session)
	for _, s := range []string{
		"", "\n", "|", "|\n", "CHAT|", "CHAT|\n", "CHAT|null\n", "CHAT|{}\n", "JOIN|[]\n", "PEERS|{\"peers\":null}\n",
		"CHAT|{\"origin\":\"zz\",\"sig\":\"!!\"}\n", "CHAT|{\"text\":\"\u2028\xff\"}\n", "chat|{}\n",
		"ABCDEFGHIJKLMNOPQ|{}\n", "PING|{\"nonce\":-1}\nPING|{\"nonce\":1e3}\n",
		strings.Repeat("A", 300) + "\n", "CHAT|" + strings.Repeat("[", 300) + "\n",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, limit := range []int{256, DefaultMaxFrame} {
			fr := NewFrameReader(bytes.NewReader(data), limit)
			for {
				typ, payload, err := fr.Next()
				if errors.Is(err, ErrMalformedFrame) {
					continue
				}
				if err != nil {
					break
				}
				if n := len(typ) + len(payload) + 2; n > limit {
					t.Fatalf("accepted a frame of %d bytes with limit %d", n, limit)
				}
				fuzzCheckReframe(t, typ, payload, limit)
				fuzzCheckDecode(t, typ, payload)
			}
		}
	})
}

// fuzzCheckReframe encodes an accepted payload again under the same type and
// expects to read back the same frame, in compact JSON.
func fuzzCheckReframe(t *testing.T, typ string, payload []byte, limit int) {
	if !json.Valid(payload) {
		return
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, payload); err != nil {
		t.Fatalf("json.Valid payload %q does not compact: %v", payload, err)
	}
	frame, err := EncodeFrame(typ, json.RawMessage(payload), limit)
	if err != nil {
		t.Fatalf("re-encoding accepted %s payload %q: %v", typ, payload, err)
	}
	gotTyp, got, err := NewFrameReader(bytes.NewReader(frame), limit).Next()
	if err != nil || gotTyp != typ || !bytes.Equal(got, compact.Bytes()) {
		t.Fatalf("re-encoded %s %q read back as %q %q, %v", typ, compact.Bytes(), gotTyp, got, err)
	}
}

// fuzzCheckDecode decodes the frames that reach the log and checks that the
// decoded value survives a second trip unchanged.
func fuzzCheckDecode(t *testing.T, typ string, payload []byte) {
	var check func()
	var v, again any
	switch typ {
	case FrameChat:
		var m, m2 ChatMsg
		v, again = &m, &m2
		check = func() { _ = m.Event().Verify() }
	case FrameJoin:
		var m, m2 JoinMsg
		v, again = &m, &m2
		check = func() { _ = m.Validate(eventlog.MaxAddrs) }
	case FramePeers:
		var m, m2 PeersMsg
		v, again = &m, &m2
		check = func() { _ = m.Validate(eventlog.MaxPeersList, eventlog.MaxAddrs) }
	default:
		return
	}
	if json.Unmarshal(payload, v) != nil {
		return
	}
	check()
	// Decoding may expand escapes, so the second trip gets room to spare.
	const roomy = 1 << 30
	first, err := EncodeFrame(typ, v, roomy)
	if err != nil {
		t.Fatalf("re-encoding decoded %s: %v", typ, err)
	}
	gotTyp, got, err := NewFrameReader(bytes.NewReader(first), len(first)).Next()
	if err != nil || gotTyp != typ {
		t.Fatalf("re-encoded %s read back as %q, %v", typ, gotTyp, err)
	}
	if err := json.Unmarshal(got, again); err != nil {
		t.Fatalf("re-encoded %s %q does not decode: %v", typ, got, err)
	}
	second, err := EncodeFrame(typ, again, roomy)
	if err != nil || !bytes.Equal(first, second) {
		t.Fatalf("%s changed on a second trip:\n%q\n%q (%v)", typ, first, second, err)
	}
}
