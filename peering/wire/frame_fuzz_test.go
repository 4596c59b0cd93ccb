package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
)

// fuzzFramePayloads makes, for every frame type of the protocol, the value
// its payload decodes into, so that the fuzzer reaches every decoder.
var fuzzFramePayloads = map[string]func() any{
	wire.FrameJoin:       func() any { return &wire.JoinMsg{} },
	wire.FramePeers:      func() any { return &wire.PeersMsg{} },
	wire.FrameChat:       func() any { return &wire.ChatMsg{} },
	wire.FrameNick:       func() any { return &wire.NickMsg{} },
	wire.FramePing:       func() any { return &wire.PingMsg{} },
	wire.FramePong:       func() any { return &wire.PingMsg{} },
	wire.FrameGoodbye:    func() any { return &wire.GoodbyeMsg{} },
	wire.FrameAuth:       func() any { return &wire.AuthMsg{} },
	wire.FrameSealed:     func() any { return &wire.SealedMsg{} },
	wire.FrameAck:        func() any { return &wire.AckMsg{} },
	wire.FrameReach:      func() any { return &wire.ReachMsg{} },
	wire.FramePunch:      func() any { return &wire.PunchMsg{} },
	wire.FrameSync:       func() any { return &wire.SyncMsg{} },
	wire.FrameCatchup:    func() any { return &wire.CatchupMsg{} },
	wire.FrameLines:      func() any { return &wire.LinesMsg{} },
	wire.FrameSynced:     func() any { return &wire.SyncedMsg{} },
	wire.FrameHave:       func() any { return &struct{}{} },
	wire.FrameSyncQuery:  func() any { return &wire.SyncQueryMsg{} },
	wire.FrameSyncPrints: func() any { return &wire.SyncPrintsMsg{} },
}

// FuzzFrame feeds arbitrary bytes to the frame reader and to the strict
// decoder of every frame type, as a hostile peer could.
func FuzzFrame(f *testing.F) {
	chat := wiretest.Chat(f, "hello <world> & 🙂")
	join := wire.JoinMsg{Version: wire.ProtocolVersion, ID: wiretest.ID(1), Name: "Alice", Port: 8080,
		Addrs: []string{"192.0.2.1:8080", "[2001:db8::1]:8080"}}
	peers := wire.PeersMsg{Peers: []wire.PeerEntry{
		{ID: wiretest.ID(2), Name: "Bob", Addrs: []string{"192.0.2.2:8081"}},
		{ID: wiretest.ID(3), Name: "Carol"},
	}}
	var session []byte
	for _, fr := range []struct {
		typ string
		v   any
	}{
		{wire.FrameJoin, join}, {wire.FramePeers, peers}, {wire.FrameChat, wire.ChatFromEvent(chat)},
		{wire.FramePing, wire.PingMsg{Nonce: 1}}, {wire.FramePong, wire.PingMsg{Nonce: 1}}, {wire.FrameGoodbye, wire.GoodbyeMsg{Reason: "bye"}},
		{wire.FrameNick, wire.NickMsg{Origin: wiretest.ID(1), Seq: 2, Time: 3, Name: "Al", Sig: []byte{1, 2}}},
		{wire.FrameAuth, wire.AuthMsg{Proof: "00ff"}},
		{wire.FrameSealed, wire.SealedMsg{Origin: wiretest.ID(1), Seq: 3, Time: 4, Name: "Al", To: wiretest.ID(2), Box: []byte{1, 2, 3}, Own: []byte{4, 5}, Sig: []byte{1, 2}}},
		{wire.FrameAck, wire.AckMsg{Origin: wiretest.ID(2), Seq: 1, Time: 5, To: wiretest.ID(1), Ref: 3, Sig: []byte{1, 2}}},
		{wire.FrameReach, wire.ReachMsg{Addr: "192.0.2.1:8080", Reachable: true}},
		{wire.FramePunch, wire.PunchMsg{ID: wiretest.ID(2), Name: "Bob", Addr: "192.0.2.2:8081"}},
		{wire.FrameSync, wire.SyncMsg{Origins: []wire.SyncOrigin{{Origin: wiretest.ID(1), Watermark: 3, Max: 9, Missing: []eventlog.Range{{From: 5, To: 6}}}}, More: true}},
		{wire.FrameCatchup, wire.CatchupMsg{Chat: &wire.ChatMsg{Origin: wiretest.ID(1), Seq: 1, Name: "Al", Text: "hi"}}},
		{wire.FrameLines, wire.LinesMsg{Origin: wiretest.ID(1), Lines: []wire.LineMsg{
			{Seq: 2, Time: 3, Name: "Al", Text: "hi", Sig: []byte{1, 2}, Prev: make([]byte, eventlog.ChainHashSize)},
			{Seq: 3, Time: 4, Name: "Al", Text: "ho", Sig: []byte{3, 4}}}}},
		{wire.FrameSynced, wire.SyncedMsg{Sent: 4}},
		{wire.FrameHave, struct{}{}},
		{wire.FrameSyncQuery, wire.SyncQueryMsg{Round: 1, Prefixes: []string{"", "a"}}},
		{wire.FrameSyncPrints, wire.SyncPrintsMsg{Round: 1, Nodes: []wire.PrintNode{{Prefix: "a", Counts: make([]uint32, 16), Sums: make([]byte, 256)}}}},
	} {
		frame, err := wire.EncodeFrame(fr.typ, fr.v, 0)
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
		for _, limit := range []int{256, wire.DefaultMaxFrame} {
			fr := wire.NewFrameReader(bytes.NewReader(data), limit)
			for {
				typ, payload, err := fr.Next()
				if errors.Is(err, wire.ErrMalformedFrame) {
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
	frame, err := wire.EncodeFrame(typ, json.RawMessage(payload), limit)
	if err != nil {
		t.Fatalf("re-encoding accepted %s payload %q: %v", typ, payload, err)
	}
	gotTyp, got, err := wire.NewFrameReader(bytes.NewReader(frame), limit).Next()
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
	if err := wire.DecodeStrict(payload, v); err != nil {
		return
	}
	switch m := v.(type) {
	case *wire.ChatMsg:
		_ = m.Event().Verify()
	case *wire.JoinMsg:
		_ = m.Validate(eventlog.MaxAddrs)
	case *wire.PeersMsg:
		_ = m.Validate(eventlog.MaxPeersList, eventlog.MaxAddrs)
	case *wire.SyncMsg:
		_ = m.Validate()
	case *wire.LinesMsg:
		fuzzCheckLines(t, m, payload)
	}
	if typ == wire.FrameChat || typ == wire.FrameNick || typ == wire.FrameCatchup {
		_, _ = wire.DecodeSigned(typ, payload)
	}
	// Decoding may expand escapes, so the second trip gets room to spare.
	const roomy = 1 << 30
	first, err := wire.EncodeFrame(typ, v, roomy)
	if err != nil {
		t.Fatalf("re-encoding decoded %s: %v", typ, err)
	}
	gotTyp, got, err := wire.NewFrameReader(bytes.NewReader(first), len(first)).Next()
	if err != nil || gotTyp != typ {
		t.Fatalf("re-encoded %s read back as %q, %v", typ, gotTyp, err)
	}
	if err := wire.DecodeStrict(got, again); err != nil {
		t.Fatalf("re-encoded %s %q does not decode strictly: %v", typ, got, err)
	}
	second, err := wire.EncodeFrame(typ, again, roomy)
	if err != nil || !bytes.Equal(first, second) {
		t.Fatalf("%s changed on a second trip:\n%q\n%q (%v)", typ, first, second, err)
	}
}

// fuzzCheckLines checks that a LINES payload that validates expands to
// lines of one origin, within the frame's bounds, each with the Prev a
// run can give it.
func fuzzCheckLines(t *testing.T, m *wire.LinesMsg, payload []byte) {
	events, err := wire.DecodeLines(payload)
	if (err == nil) != (m.Validate() == nil) {
		t.Fatalf("DecodeLines() = %v, but Validate() disagrees", err)
	}
	if err != nil {
		return
	}
	if len(events) == 0 || len(events) > wire.MaxLinesPerFrame {
		t.Fatalf("a valid LINES of %d lines", len(events))
	}
	for i, e := range events {
		if e.Origin != m.Origin || e.OriginSeq != m.Lines[i].Seq {
			t.Fatalf("line %d decoded as %s %d", i, e.Origin.Short(), e.OriginSeq)
		}
		if i > 0 && len(e.Prev) != eventlog.ChainHashSize {
			t.Fatalf("line %d decoded with a prev of %d bytes", i, len(e.Prev))
		}
	}
}
