package peering

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
)

// fuzzFramePayloads makes, for every frame type of the protocol, the value
// its payload decodes into, so that the fuzzer reaches every decoder.
var fuzzFramePayloads = map[string]func() any{
	FrameJoin:       func() any { return &JoinMsg{} },
	FramePeers:      func() any { return &PeersMsg{} },
	FrameChat:       func() any { return &ChatMsg{} },
	FrameNick:       func() any { return &NickMsg{} },
	FramePing:       func() any { return &PingMsg{} },
	FramePong:       func() any { return &PingMsg{} },
	FrameGoodbye:    func() any { return &GoodbyeMsg{} },
	FrameAuth:       func() any { return &AuthMsg{} },
	FrameSealed:     func() any { return &SealedMsg{} },
	FrameAck:        func() any { return &AckMsg{} },
	FrameReach:      func() any { return &ReachMsg{} },
	FramePunch:      func() any { return &PunchMsg{} },
	FrameSync:       func() any { return &SyncMsg{} },
	FrameCatchup:    func() any { return &CatchupMsg{} },
	FrameSynced:     func() any { return &SyncedMsg{} },
	FrameHave:       func() any { return &struct{}{} },
	FrameSyncQuery:  func() any { return &SyncQueryMsg{} },
	FrameSyncPrints: func() any { return &SyncPrintsMsg{} },
}

// FuzzFrame feeds arbitrary bytes to the frame reader and to the strict
// decoder of every frame type, as a hostile peer could.
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
		{FramePing, PingMsg{Nonce: 1}}, {FramePong, PingMsg{Nonce: 1}}, {FrameGoodbye, GoodbyeMsg{Reason: "bye"}},
		{FrameNick, NickMsg{Origin: wireTestID(1), Seq: 2, Time: 3, Name: "Al", Sig: []byte{1, 2}}},
		{FrameAuth, AuthMsg{Proof: "00ff"}},
		{FrameSealed, SealedMsg{Origin: wireTestID(1), Seq: 3, Time: 4, Name: "Al", To: wireTestID(2), Box: []byte{1, 2, 3}, Own: []byte{4, 5}, Sig: []byte{1, 2}}},
		{FrameAck, AckMsg{Origin: wireTestID(2), Seq: 1, Time: 5, To: wireTestID(1), Ref: 3, Sig: []byte{1, 2}}},
		{FrameReach, ReachMsg{Addr: "192.0.2.1:8080", Reachable: true}},
		{FramePunch, PunchMsg{ID: wireTestID(2), Name: "Bob", Addr: "192.0.2.2:8081"}},
		{FrameSync, SyncMsg{Origins: []SyncOrigin{{Origin: wireTestID(1), Watermark: 3, Max: 9, Missing: []eventlog.Range{{From: 5, To: 6}}}}, More: true}},
		{FrameCatchup, CatchupMsg{Chat: &ChatMsg{Origin: wireTestID(1), Seq: 1, Name: "Al", Text: "hi"}}},
		{FrameSynced, SyncedMsg{Sent: 4}},
		{FrameHave, struct{}{}},
		{FrameSyncQuery, SyncQueryMsg{Round: 1, Prefixes: []string{"", "a"}}},
		{FrameSyncPrints, SyncPrintsMsg{Round: 1, Nodes: []PrintNode{{Prefix: "a", Counts: make([]uint32, 16), Sums: make([]byte, 256)}}}},
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
		"CHAT|{\"text\":\"a\",\"Text\":\"b\"}\n", "CHAT|{\"text\":\"a\",\"\\u0074ext\":\"b\"}\n",
		"PEERS|{\"peers\":[{\"id\":\"\",\"pad\":1}]}\n", "SYNC|{\"origins\":[{\"missing\":[{}]}]} {}\n",
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

// fuzzCheckDecode decodes a payload strictly, as the node does, and checks
// that what decoded survives a second trip unchanged and that what strict
// decoding refuses is a kind of error the node knows.
func fuzzCheckDecode(t *testing.T, typ string, payload []byte) {
	mk, ok := fuzzFramePayloads[typ]
	if !ok {
		return
	}
	v, again := mk(), mk()
	if err := decodeStrict(payload, v); err != nil {
		return
	}
	switch m := v.(type) {
	case *ChatMsg:
		_ = m.Event().Verify()
	case *JoinMsg:
		_ = m.Validate(eventlog.MaxAddrs)
	case *PeersMsg:
		_ = m.Validate(eventlog.MaxPeersList, eventlog.MaxAddrs)
	case *SyncMsg:
		_ = m.Validate()
	}
	if typ == FrameChat || typ == FrameNick || typ == FrameCatchup {
		_, _ = decodeSigned(typ, payload)
	}
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
	if err := decodeStrict(got, again); err != nil {
		t.Fatalf("re-encoded %s %q does not decode strictly: %v", typ, got, err)
	}
	second, err := EncodeFrame(typ, again, roomy)
	if err != nil || !bytes.Equal(first, second) {
		t.Fatalf("%s changed on a second trip:\n%q\n%q (%v)", typ, first, second, err)
	}
}
