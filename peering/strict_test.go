package peering

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
)

func TestStrictDecodingRefusesWhatAPlainDecoderWouldAccept(t *testing.T) {
	good, err := json.Marshal(ChatFromEvent(wireTestChat(t, "pay Bob 10")))
	if err != nil {
		t.Fatal(err)
	}
	body := string(good[1 : len(good)-1]) // the fields without braces
	for _, tc := range []struct {
		name    string
		payload string
	}{
		{"an unknown field", `{` + body + `,"pad":"` + strings.Repeat("x", 1000) + `"}`},
		{"an unknown field in a nested object", `{"peers":[{"id":"` + wireTestID(2).String() + `","name":"Bob","addrs":[],"extra":1}]}`},
		{"a duplicate key", `{` + body + `,"text":"pay Bob 1000"}`},
		{"a duplicate key in another case", `{` + body + `,"Text":"pay Bob 1000"}`},
		{"a duplicate key spelled with escapes", `{` + body + `,"\u0074ext":"pay Bob 1000"}`},
		{"a second value", string(good) + ` {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any = &ChatMsg{}
			if strings.Contains(tc.payload, `"peers"`) {
				v = &PeersMsg{}
			}
			err := decodeStrict([]byte(tc.payload), v)
			if !errors.Is(err, ErrStrictDecode) {
				t.Errorf("decodeStrict(%.60q...) = %v, want ErrStrictDecode", tc.payload, err)
			}
		})
	}
}

func TestStrictDecodingAcceptsEveryFrameThisNodeSends(t *testing.T) {
	// Duplicates are per object: the same key in sibling objects is fine.
	peers := PeersMsg{Peers: []PeerEntry{
		{ID: wireTestID(2), Name: "Bob", Addrs: []string{"192.0.2.2:1"}},
		{ID: wireTestID(3), Name: "Carol", Addrs: []string{}},
	}}
	for _, tc := range []struct {
		v, into any
	}{
		{ChatFromEvent(wireTestChat(t, "hello")), &ChatMsg{}},
		{peers, &PeersMsg{}},
		{JoinMsg{Version: 1, ID: wireTestID(1), Name: "Alice", Port: 1, Addrs: []string{"192.0.2.1:1"}, Full: true}, &JoinMsg{}},
		{PingMsg{Nonce: 7}, &PingMsg{}},
		{GoodbyeMsg{Reason: "bye"}, &GoodbyeMsg{}},
	} {
		payload, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeStrict(append(payload, ' ', '\t'), tc.into); err != nil {
			t.Errorf("decodeStrict(%s): %v", payload, err)
		}
	}
}

func TestARelayedLineIsTheCanonicalEncodingNotTheBytesReceived(t *testing.T) {
	chat := wireTestChat(t, "pay Bob 10")
	canonical, err := EncodeFrame(FrameChat, ChatFromEvent(chat), 0)
	if err != nil {
		t.Fatal(err)
	}
	payload := canonical[len(FrameChat)+1 : len(canonical)-1]
	// Padding by whitespace and escapes is valid JSON and not refused,
	// but it must not travel further.
	padded := strings.Replace(string(payload), `{"origin"`, "{"+strings.Repeat(" ", 60000)+`"\u006frigin"`, 1)
	body, err := decodeSigned(FrameChat, []byte(padded))
	if err != nil {
		t.Fatal(err)
	}
	if err := eventlog.VerifySigned(body); err != nil {
		t.Fatal(err)
	}
	relayed, err := signedFrame(body, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(relayed) != string(canonical) {
		t.Errorf("relayed %d bytes %.80q..., want the canonical %d bytes", len(relayed), relayed, len(canonical))
	}
}

// BenchmarkDecodeChat measures what strict decoding costs a CHAT payload
// over encoding/json's plain Unmarshal, the baseline, and what encoding
// the verified line again for relay costs.
func BenchmarkDecodeChat(b *testing.B) {
	payload, err := json.Marshal(ChatFromEvent(wireTestChat(b, strings.Repeat("the quick brown fox ", 4))))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m ChatMsg
			if err := json.Unmarshal(payload, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("canonical_relay_frame", func(b *testing.B) {
		var m ChatMsg
		if err := decodeStrict(payload, &m); err != nil {
			b.Fatal(err)
		}
		body := m.Event()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := signedFrame(body, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m ChatMsg
			if err := decodeStrict(payload, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
