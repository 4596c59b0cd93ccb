package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
)

// wireTestRoundTrip sends v through a frame and decodes the payload into out,
// as a receiving peer would.
func wireTestRoundTrip(tb testing.TB, typ string, v, out any) {
	tb.Helper()
	frame, err := wire.EncodeFrame(typ, v, 0)
	if err != nil {
		tb.Fatalf("wire.EncodeFrame() = %v", err)
	}
	gotTyp, payload, err := wire.NewFrameReader(bytes.NewReader(frame), 0).Next()
	if err != nil || gotTyp != typ {
		tb.Fatalf("Next() = %q, %v; want %q", gotTyp, err, typ)
	}
	if err := json.Unmarshal(payload, out); err != nil {
		tb.Fatalf("decode %s payload %q: %v", typ, payload, err)
	}
}

func TestSignedChatVerifiesAfterCrossingTheWire(t *testing.T) {
	sent := eventlog.Chat{OriginSeq: 7, OriginTime: time.Now(), Name: "Bob", Text: "héllo <wörld> & \t 🙂"}
	sent.Sign(wiretest.Key(2))

	var msg wire.ChatMsg
	wireTestRoundTrip(t, wire.FrameChat, wire.ChatFromEvent(sent), &msg)
	got := msg.Event()

	if err := got.Verify(); err != nil {
		t.Fatalf("received chat does not verify: %v", err)
	}
	if got.Origin != sent.Origin || got.OriginSeq != sent.OriginSeq || !got.OriginTime.Equal(sent.OriginTime) ||
		got.Name != sent.Name || got.Text != sent.Text || !bytes.Equal(got.Sig, sent.Sig) {
		t.Fatalf("received %+v, sent %+v", got, sent)
	}
}

func TestAlteredChatFailsVerification(t *testing.T) {
	tests := []struct {
		name  string
		alter func(*wire.ChatMsg)
	}{
		{name: "text", alter: func(m *wire.ChatMsg) { m.Text += "!" }},
		{name: "name", alter: func(m *wire.ChatMsg) { m.Name = "Mallory" }},
		{name: "seq", alter: func(m *wire.ChatMsg) { m.Seq++ }},
		{name: "time", alter: func(m *wire.ChatMsg) { m.Time++ }},
		{name: "origin", alter: func(m *wire.ChatMsg) { m.Origin = wiretest.ID(9) }},
		{name: "signature", alter: func(m *wire.ChatMsg) { m.Sig[0] ^= 1 }},
		{name: "truncated signature", alter: func(m *wire.ChatMsg) { m.Sig = m.Sig[:10] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var msg wire.ChatMsg
			wireTestRoundTrip(t, wire.FrameChat, wire.ChatFromEvent(wiretest.Chat(t, "pay Bob 10")), &msg)
			tt.alter(&msg)
			if err := msg.Event().Verify(); !errors.Is(err, eventlog.ErrBadSignature) {
				t.Fatalf("Verify() of a chat with altered %s = %v, want ErrBadSignature", tt.name, err)
			}
		})
	}
}

func TestSignedNickVerifiesAfterCrossingTheWire(t *testing.T) {
	sent := eventlog.Nick{OriginSeq: 3, OriginTime: time.Now(), Name: "Robert"}
	sent.Sign(wiretest.Key(2))

	var msg wire.NickMsg
	wireTestRoundTrip(t, wire.FrameNick, wire.NickFromEvent(sent), &msg)
	if err := msg.Event().Verify(); err != nil {
		t.Fatalf("received nick does not verify: %v", err)
	}
	msg.Name = "Roberta"
	if err := msg.Event().Verify(); !errors.Is(err, eventlog.ErrBadSignature) {
		t.Fatalf("Verify() of an altered nick = %v, want ErrBadSignature", err)
	}
}

func TestAChatSignedAtTheEpochStillVerifiesWhenCaughtUpFromTheLog(t *testing.T) {
	c := eventlog.Chat{OriginSeq: 1, OriginTime: time.Unix(0, 0), Name: "Mallory", Text: "from 1970"}
	c.Sign(wiretest.Key(9))
	data, err := eventlog.Encode(eventlog.Event{Seq: 1, Time: time.Now(), Body: c})
	if err != nil {
		t.Fatal(err)
	}
	e, err := eventlog.Decode(1, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.ChatFromEvent(e.Body.(eventlog.Chat)).Event().Verify(); err != nil {
		t.Errorf("the stored copy no longer verifies: %v", err)
	}
}

func TestWireMessagesUseLowerCaseFieldNames(t *testing.T) {
	id := wiretest.ID(1)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{
			name: "join without optional fields",
			v:    wire.JoinMsg{Version: 1, ID: id, Name: "Alice", Port: 8080},
			want: fmt.Sprintf(`{"version":1,"id":"%s","name":"Alice","port":8080}`, id),
		},
		{
			name: "join with addresses",
			v:    wire.JoinMsg{Version: 1, ID: id, Name: "Alice", Port: 8080, Addrs: []string{"10.0.0.1:8080"}},
			want: fmt.Sprintf(`{"version":1,"id":"%s","name":"Alice","port":8080,"addrs":["10.0.0.1:8080"]}`, id),
		},
		{
			name: "peers",
			v:    wire.PeersMsg{Peers: []wire.PeerEntry{{ID: id, Name: "Alice", Addrs: []string{"[::1]:80"}}}},
			want: fmt.Sprintf(`{"peers":[{"id":"%s","name":"Alice","addrs":["[::1]:80"]}]}`, id),
		},
		{
			name: "chat",
			v:    wire.ChatMsg{Origin: id, Seq: 1, Time: 2, Name: "A", Text: "<b>", Sig: []byte{0xff, 0x00}},
			want: fmt.Sprintf(`{"origin":"%s","seq":1,"time":2,"name":"A","text":"<b>","sig":"/wA="}`, id),
		},
		{
			name: "nick",
			v:    wire.NickMsg{Origin: id, Seq: 1, Time: 2, Name: "A", Sig: []byte{0xff}},
			want: fmt.Sprintf(`{"origin":"%s","seq":1,"time":2,"name":"A","sig":"/w=="}`, id),
		},
		{name: "ping", v: wire.PingMsg{Nonce: 5}, want: `{"nonce":5}`},
		{name: "goodbye", v: wire.GoodbyeMsg{Reason: "full"}, want: `{"reason":"full"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := wire.EncodeFrame("X", tt.v, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(frame); got != "X|"+tt.want+"\n" {
				t.Fatalf("frame = %s, want X|%s", got, tt.want)
			}
		})
	}
}

func TestJoinValidateAcceptsOnlyWellFormedJoins(t *testing.T) {
	good := wire.JoinMsg{Version: 1, ID: wiretest.ID(1), Name: "Alice", Port: 8080,
		Addrs: []string{"192.0.2.1:8080", "[2001:db8::1]:8080", "alice.example:1"}}
	tests := []struct {
		name  string
		alter func(*wire.JoinMsg)
		err   string // "" for valid
	}{
		{name: "as sent", alter: func(*wire.JoinMsg) {}},
		{name: "later version", alter: func(m *wire.JoinMsg) { m.Version = 2 }},
		{name: "no addresses", alter: func(m *wire.JoinMsg) { m.Addrs = nil }},
		{name: "highest port", alter: func(m *wire.JoinMsg) { m.Port = 65535 }},
		{name: "eight addresses", alter: func(m *wire.JoinMsg) { m.Addrs = wireTestAddrs(8) }},
		{name: "version 0", alter: func(m *wire.JoinMsg) { m.Version = 0 }, err: "version 0"},
		{name: "zero id", alter: func(m *wire.JoinMsg) { m.ID = eventlog.NodeID{} }, err: "node id is missing"},
		{name: "empty name", alter: func(m *wire.JoinMsg) { m.Name = "" }, err: "name is empty"},
		{name: "name with '#'", alter: func(m *wire.JoinMsg) { m.Name = "a#b" }, err: "reserved"},
		{name: "name too long", alter: func(m *wire.JoinMsg) { m.Name = strings.Repeat("a", 33) }, err: "longer than"},
		{name: "port 0", alter: func(m *wire.JoinMsg) { m.Port = 0 }, err: "port 0"},
		{name: "port 65536", alter: func(m *wire.JoinMsg) { m.Port = 65536 }, err: "port 65536"},
		{name: "nine addresses", alter: func(m *wire.JoinMsg) { m.Addrs = wireTestAddrs(9) }, err: "9 addresses, limit 8"},
		{name: "address without port", alter: func(m *wire.JoinMsg) { m.Addrs = []string{"192.0.2.1"} }, err: "missing port"},
		{name: "address with empty host", alter: func(m *wire.JoinMsg) { m.Addrs = []string{":8080"} }, err: "host is empty"},
		{name: "address with port 0", alter: func(m *wire.JoinMsg) { m.Addrs = []string{"192.0.2.1:0"} }, err: "port must be"},
		{name: "address with named port", alter: func(m *wire.JoinMsg) { m.Addrs = []string{"192.0.2.1:http"} }, err: "port must be"},
		{name: "address with port 65536", alter: func(m *wire.JoinMsg) { m.Addrs = []string{"192.0.2.1:65536"} }, err: "port must be"},
		{name: "address with signed port", alter: func(m *wire.JoinMsg) { m.Addrs = []string{"192.0.2.1:+80"} }, err: "port must be"},
		{name: "address with space", alter: func(m *wire.JoinMsg) { m.Addrs = []string{"a b:80"} }, err: "space"},
		{name: "address with newline", alter: func(m *wire.JoinMsg) { m.Addrs = []string{"a\nb:80"} }, err: "control"},
		{name: "address too long", alter: func(m *wire.JoinMsg) { m.Addrs = []string{strings.Repeat("a", 253) + ":80"} }, err: "limit 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good
			m.Addrs = append([]string(nil), good.Addrs...)
			tt.alter(&m)
			wireTestCheckErr(t, m.Validate(eventlog.MaxAddrs), tt.err)
		})
	}
}

func TestPeersValidateAcceptsOnlyWellFormedLists(t *testing.T) {
	entry := wire.PeerEntry{ID: wiretest.ID(1), Name: "Alice", Addrs: []string{"192.0.2.1:8080"}}
	tests := []struct {
		name  string
		peers []wire.PeerEntry
		err   string // "" for valid
	}{
		{name: "empty list"},
		{name: "one entry", peers: []wire.PeerEntry{entry}},
		{name: "entry without addresses", peers: []wire.PeerEntry{{ID: entry.ID, Name: "Alice"}}},
		{name: "shared names", peers: []wire.PeerEntry{entry, {ID: wiretest.ID(2), Name: "Alice"}}},
		{name: "as many entries as allowed", peers: wireTestEntries(3)},
		{name: "too many entries", peers: wireTestEntries(4), err: "4 entries, limit 3"},
		{name: "zero id", peers: []wire.PeerEntry{entry, {Name: "Bob"}}, err: "entry 1: node id is missing"},
		{name: "bad name", peers: []wire.PeerEntry{{ID: entry.ID, Name: " Bob"}}, err: "entry 0"},
		{name: "too many addresses", peers: []wire.PeerEntry{{ID: entry.ID, Name: "Bob", Addrs: wireTestAddrs(3)}}, err: "3 addresses, limit 2"},
		{name: "bad address", peers: []wire.PeerEntry{{ID: entry.ID, Name: "Bob", Addrs: []string{"nowhere"}}}, err: "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wireTestCheckErr(t, wire.PeersMsg{Peers: tt.peers}.Validate(3, 2), tt.err)
		})
	}
}

func TestDefaultLimitsAcceptAFullPeersList(t *testing.T) {
	m := wire.PeersMsg{Peers: make([]wire.PeerEntry, eventlog.MaxPeersList)}
	for i := range m.Peers {
		m.Peers[i] = wire.PeerEntry{ID: wiretest.ID(1), Name: "Alice", Addrs: wireTestAddrs(eventlog.MaxAddrs)}
	}
	if err := m.Validate(eventlog.MaxPeersList, eventlog.MaxAddrs); err != nil {
		t.Fatal(err)
	}
}

func wireTestAddrs(n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("192.0.2.%d:%d", i+1, 8000+i)
	}
	return addrs
}

func wireTestEntries(n int) []wire.PeerEntry {
	entries := make([]wire.PeerEntry, n)
	for i := range entries {
		entries[i] = wire.PeerEntry{ID: wiretest.ID(byte(i + 1)), Name: fmt.Sprintf("peer%d", i)}
	}
	return entries
}

func wireTestCheckErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("Validate() = %v, want nil", err)
	case want != "" && err == nil:
		t.Fatalf("Validate() = nil, want an error containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("Validate() = %v, want an error containing %q", err, want)
	}
}
