package eventlog_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// everyBody has one body of each type, every field set, all times in UTC
// so that what Decode returns compares equal.
func everyBody() []eventlog.Body {
	alice, bob := originKey("alice"), originKey("bob")
	at := time.Date(2026, 5, 17, 8, 4, 5, 123456789, time.UTC)
	return []eventlog.Body{
		eventlog.Join{ID: idOf(alice), Name: "Alice", Addrs: []string{"10.0.0.1:8080", "[::1]:8080"}, Version: 1},
		eventlog.Peers{From: idOf(alice), Peers: []eventlog.PeerInfo{
			{ID: idOf(bob), Name: "Bob", Addrs: []string{"10.0.0.2:8081"}},
			{ID: peerID("carol"), Name: "Carol"},
		}},
		eventlog.Connect{ID: idOf(bob), Addr: "10.0.0.2:8081", Inbound: true},
		eventlog.Disconnect{ID: idOf(bob), Reason: "read: connection reset by peer"},
		eventlog.DialFailed{ID: peerID("carol"), Addr: "10.0.0.3:8082", Error: "dial tcp: i/o timeout"},
		signedChat(alice, "Alice", 42, "hello, wörld ✓"),
		eventlog.Private{From: idOf(alice), To: idOf(bob), Name: "Alice", Text: "just you", SentTime: at, Ref: 12},
		eventlog.Delivered{To: idOf(bob), Seq: 12},
		signedNick(bob, "Robert", 7),
		eventlog.Ban{ID: peerID("mallory"), Until: at, Reason: "spam"},
		eventlog.Ban{ID: peerID("mallory"), Reason: "for good"},
		eventlog.Unban{ID: peerID("mallory")},
		goldenSealed(),
		goldenAck(),
		chainedChat(alice, "Alice", 43, "and again", signedChat(alice, "Alice", 42, "hello, wörld ✓")),
		chainedNick(bob, "Bob", 8, signedNick(bob, "Robert", 7)),
	}
}

func encodeEvent(t testing.TB, e eventlog.Event) []byte {
	t.Helper()
	data, err := eventlog.Encode(e)
	if err != nil {
		t.Fatalf("Encode(%T): %v", e.Body, err)
	}
	return data
}

func TestEveryBodyTypeSurvivesEncodeAndDecode(t *testing.T) {
	seen := map[eventlog.Type]bool{}
	for _, body := range everyBody() {
		t.Run(body.Type().String(), func(t *testing.T) {
			want := eventlog.Event{Seq: 99, Time: time.Date(2026, 5, 17, 8, 4, 6, 1, time.UTC), Body: body}
			got, err := eventlog.Decode(99, encodeEvent(t, want))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the event:\n got %#v\nwant %#v", got, want)
			}
		})
		seen[body.Type()] = true
	}
	for typ := eventlog.TypeJoin; typ <= eventlog.TypeAck; typ++ {
		if !seen[typ] {
			t.Errorf("no round trip case for %v", typ)
		}
	}
}

func TestTimesDecodeAsTheSameInstantInUTC(t *testing.T) {
	berlin := time.FixedZone("CEST", 2*3600)
	at := time.Date(2026, 7, 1, 10, 0, 0, 500, berlin)
	e := eventlog.Event{Time: time.Now(), Body: eventlog.Ban{ID: peerID("mallory"), Until: at}}
	got, err := eventlog.Decode(1, encodeEvent(t, e))
	if err != nil {
		t.Fatal(err)
	}
	until := got.Body.(eventlog.Ban).Until
	if !until.Equal(at) || until.Location() != time.UTC {
		t.Errorf("Until decoded as %v, want %v in UTC", until, at.UTC())
	}
	if !got.Time.Equal(e.Time) || got.Time.Location() != time.UTC {
		t.Errorf("Time decoded as %v, want %v in UTC", got.Time, e.Time.UTC())
	}
}

func TestEncodeRefusesAnUnknownBody(t *testing.T) {
	for _, body := range []eventlog.Body{nil, foreignBody{}} {
		if _, err := eventlog.Encode(eventlog.Event{Body: body}); err == nil {
			t.Errorf("Encode(%T) succeeded", body)
		}
	}
}

// foreignBody is a Body that the codec does not know.
type foreignBody struct{}

func (foreignBody) Type() eventlog.Type { return 200 }

func TestDecodeRejectsMalformedInput(t *testing.T) {
	chat := encodeEvent(t, eventlog.Event{Time: chatEpoch, Body: signedChat(originKey("alice"), "Alice", 1, "hi")})
	connect := encodeEvent(t, eventlog.Event{Time: chatEpoch, Body: eventlog.Connect{ID: peerID("bob"), Addr: "x"}})
	peers := encodeEvent(t, eventlog.Event{Time: chatEpoch, Body: eventlog.Peers{From: peerID("bob")}})
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"nothing", nil, "0 bytes"},
		{"one byte", []byte{1}, "1 bytes"},
		{"unknown codec version", append([]byte{5}, chat[1:]...), "codec version 5"},
		{"type zero", []byte{1, 0, 0}, "unknown type 0"},
		{"type after the last", []byte{1, byte(eventlog.TypeAck) + 1, 0}, "unknown type"},
		{"chat cut short", chat[:len(chat)-1], "CHAT"},
		{"chat with a trailing byte", append(bytes.Clone(chat), 0), "trailing"},
		{"bool neither 0 nor 1", append(bytes.Clone(connect[:len(connect)-1]), 2), "bad bool"},
		{"peers count larger than the input", append(bytes.Clone(peers[:len(peers)-1]), 0xff, 0xff, 0x03), "exceeds"},
		{"varint overflow", append(bytes.Clone(peers[:len(peers)-1]), bytes.Repeat([]byte{0xff}, 11)...), "bad varint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := eventlog.Decode(5, c.data)
			if !errors.Is(err, eventlog.ErrDecode) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Decode = %v; want ErrDecode mentioning %q", err, c.want)
			}
		})
	}
}

func TestDecodeKeepsNoReferenceToItsInput(t *testing.T) {
	data := encodeEvent(t, eventlog.Event{Time: chatEpoch, Body: signedChat(originKey("alice"), "Alice", 3, "original text")})
	e, err := eventlog.Decode(1, data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'x'
	}
	c := e.Body.(eventlog.Chat)
	if c.Text != "original text" || c.Verify() != nil {
		t.Errorf("overwriting the input changed the decoded chat: %+v", c)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for i, body := range everyBody() {
		f.Add(encodeEvent(f, eventlog.Event{Seq: uint64(i + 1), Time: chatEpoch.Add(time.Duration(i) * time.Hour), Body: body}))
	}
	f.Add(encodeEvent(f, eventlog.Event{Body: eventlog.Join{}}))
	f.Add([]byte{1, byte(eventlog.TypePeers), 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := eventlog.Decode(7, data)
		if err != nil {
			if !errors.Is(err, eventlog.ErrDecode) {
				t.Fatalf("Decode error %v is not ErrDecode", err)
			}
			return
		}
		again, err := eventlog.Encode(e)
		if err != nil {
			t.Fatalf("Encode of a decoded %v: %v", e.Body.Type(), err)
		}
		back, err := eventlog.Decode(7, again)
		if err != nil {
			t.Fatalf("Decode of a re-encoded %v: %v", e.Body.Type(), err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("re-encoding changed the event:\nfirst  %#v\nsecond %#v", e, back)
		}
	})
}
