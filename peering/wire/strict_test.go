package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
)

func TestStrictDecodingRefusesWhatAPlainDecoderWouldAccept(t *testing.T) {
	good, err := json.Marshal(wire.ChatFromEvent(wiretest.Chat(t, "pay Bob 10")))
	if err != nil {
		t.Fatal(err)
	}
	body := string(good[1 : len(good)-1]) // the fields without braces
	for _, tc := range []struct {
		name    string
		payload string
	}{
		{"an unknown field", `{` + body + `,"pad":"` + strings.Repeat("x", 1000) + `"}`},
		{"an unknown field in a nested object", `{"peers":[{"id":"` + wiretest.ID(2).String() + `","name":"Bob","addrs":[],"extra":1}]}`},
		{"a duplicate key", `{` + body + `,"text":"pay Bob 1000"}`},
		{"a duplicate key in another case", `{` + body + `,"Text":"pay Bob 1000"}`},
		{"a duplicate key spelled with escapes", `{` + body + `,"\u0074ext":"pay Bob 1000"}`},
		{"a second value", string(good) + ` {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any = &wire.ChatMsg{}
			if strings.Contains(tc.payload, `"peers"`) {
				v = &wire.PeersMsg{}
			}
			err := wire.DecodeStrict([]byte(tc.payload), v)
			if !errors.Is(err, wire.ErrStrictDecode) {
				t.Errorf("wire.DecodeStrict(%.60q...) = %v, want wire.ErrStrictDecode", tc.payload, err)
			}
		})
	}
}

func TestStrictDecodingAcceptsEveryFrameThisNodeSends(t *testing.T) {
	// Duplicates are per object: the same key in sibling objects is fine.
	peers := wire.PeersMsg{Peers: []wire.PeerEntry{
		{ID: wiretest.ID(2), Name: "Bob", Addrs: []string{"192.0.2.2:1"}},
		{ID: wiretest.ID(3), Name: "Carol", Addrs: []string{}},
	}}
	for _, tc := range []struct {
		v, into any
	}{
		{wire.ChatFromEvent(wiretest.Chat(t, "hello")), &wire.ChatMsg{}},
		{peers, &wire.PeersMsg{}},
		{wire.JoinMsg{Version: 1, ID: wiretest.ID(1), Name: "Alice", Port: 1, Addrs: []string{"192.0.2.1:1"}, Full: true}, &wire.JoinMsg{}},
		{wire.PingMsg{Nonce: 7}, &wire.PingMsg{}},
		{wire.GoodbyeMsg{Reason: "bye"}, &wire.GoodbyeMsg{}},
	} {
		payload, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.DecodeStrict(append(payload, ' ', '\t'), tc.into); err != nil {
			t.Errorf("wire.DecodeStrict(%s): %v", payload, err)
		}
	}
}

// BenchmarkDecodeChat measures what strict decoding costs a CHAT payload
// over encoding/json's plain Unmarshal, the baseline, and what encoding
// the verified line again for relay costs.
func BenchmarkDecodeChat(b *testing.B) {
	payload, err := json.Marshal(wire.ChatFromEvent(wiretest.Chat(b, strings.Repeat("the quick brown fox ", 4))))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m wire.ChatMsg
			if err := json.Unmarshal(payload, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("canonical_relay_frame", func(b *testing.B) {
		var m wire.ChatMsg
		if err := wire.DecodeStrict(payload, &m); err != nil {
			b.Fatal(err)
		}
		body := m.Event()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wire.SignedFrame(body, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m wire.ChatMsg
			if err := wire.DecodeStrict(payload, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
