package eventlog_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/seal"
	"github.com/p2pchat/p2pchat/store"
)

// goldenSealed and goldenAck have fixed bytes where real ones are random
// or signed, so their stored form is fixed too.
func goldenSealed() eventlog.Sealed {
	return eventlog.Sealed{
		Origin:     idOf(originKey("alice")),
		OriginSeq:  9,
		OriginTime: time.Date(2026, 5, 17, 8, 4, 5, 0, time.UTC),
		Name:       "Alice",
		To:         idOf(originKey("bob")),
		Box:        bytes.Repeat([]byte{0xb0}, 4),
		Own:        bytes.Repeat([]byte{0x0e}, 3),
		Sig:        bytes.Repeat([]byte{0x51}, 2),
	}
}

func goldenAck() eventlog.Ack {
	return eventlog.Ack{
		Origin:     idOf(originKey("bob")),
		OriginSeq:  4,
		OriginTime: time.Date(2026, 5, 17, 8, 4, 5, 0, time.UTC),
		To:         idOf(originKey("alice")),
		Ref:        9,
		Sig:        bytes.Repeat([]byte{0x51}, 2),
	}
}

// The stored forms of the private message types, as codec version 2
// writes them. A change to these bytes is a change of the format: it
// needs a new codec version, and these records must still decode.
func TestPrivateMessageRecordsDecodeAsStored(t *testing.T) {
	local := time.Date(2026, 5, 17, 8, 4, 6, 0, time.UTC)
	alice, bob := idOf(originKey("alice")), idOf(originKey("bob"))
	cases := []struct {
		hex  string
		body eventlog.Body
	}{
		{
			"020c80f0a8c7bdeaa5b031" + alice.String() + "09ffa7d6b907" + "05416c696365" + bob.String() +
				"04b0b0b0b0" + "030e0e0e" + "025151",
			goldenSealed(),
		},
		{
			"020d80f0a8c7bdeaa5b031" + bob.String() + "04ffa7d6b907" + alice.String() + "09" + "025151",
			goldenAck(),
		},
		// Direct messages of earlier releases stay readable.
		{
			"020780f0a8c7bdeaa5b031" + alice.String() + bob.String() + "05416c696365" + "026869" + "80c8d28db6eaa5b031" + "0c",
			eventlog.Private{From: alice, To: bob, Name: "Alice", Text: "hi", SentTime: local.Add(-time.Second), Ref: 12},
		},
		{
			"020b80f0a8c7bdeaa5b031" + bob.String() + "0c",
			eventlog.Delivered{To: bob, Seq: 12},
		},
	}
	for _, c := range cases {
		t.Run(c.body.Type().String(), func(t *testing.T) {
			data, err := hex.DecodeString(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			e, err := eventlog.Decode(5, data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(e.Body, c.body) || !e.Time.Equal(local) {
				t.Errorf("decoded %#v at %v\nwant %#v at %v", e.Body, e.Time, c.body, local)
			}
			// Codec versions 3 and 4 changed PEERS, CHAT and NICK only:
			// past the version byte, these types encode as version 2
			// stored them.
			again := encodeEvent(t, e)
			if !bytes.Equal(again[1:], data[1:]) {
				t.Errorf("encodes as %x, stored as %s", again, c.hex)
			}
		})
	}
}

func sealedFrom(t *testing.T, from string, to eventlog.NodeID, seq uint64, text string) eventlog.Sealed {
	t.Helper()
	key := originKey(from)
	s, err := eventlog.NewSealed(key, to, from, text)
	if err != nil {
		t.Fatal(err)
	}
	s.OriginSeq, s.OriginTime = seq, chatEpoch.Add(time.Duration(seq)*time.Second)
	s.Sign(key)
	return s
}

func TestOnlyTheTwoEndsReadAPrivateMessage(t *testing.T) {
	bob := originKey("bob")
	s := sealedFrom(t, "alice", idOf(bob), 1, "meet at noon")
	if err := s.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, name := range []string{"bob", "alice"} {
		text, err := s.Open(originKey(name))
		if err != nil || text != "meet at noon" {
			t.Errorf("%s opens %q, %v", name, text, err)
		}
	}
	if _, err := s.Open(originKey("carol")); !errors.Is(err, eventlog.ErrNotForMe) {
		t.Errorf("carol: %v, want ErrNotForMe", err)
	}
}

func TestPrivateMessageToTheWrongRecipientIsUnreadable(t *testing.T) {
	// Sealed for Carol but addressed to Bob: Bob's key cannot open it.
	s := sealedFrom(t, "alice", idOf(originKey("carol")), 1, "for carol")
	s.To = idOf(originKey("bob"))
	s.Sign(originKey("alice"))
	if err := s.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := s.Open(originKey("bob")); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("bob opened a box sealed to carol: %v", err)
	}
}

func TestForgedOrAlteredPrivateMessagesAreRefused(t *testing.T) {
	bob := originKey("bob")
	cases := map[string]func(s *eventlog.Sealed){
		"another sender's signature": func(s *eventlog.Sealed) {
			origin := s.Origin
			s.Sign(originKey("mallory"))
			s.Origin = origin
		},
		"altered box":       func(s *eventlog.Sealed) { s.Box[len(s.Box)-1] ^= 1 },
		"altered own copy":  func(s *eventlog.Sealed) { s.Own[0] ^= 1 },
		"other recipient":   func(s *eventlog.Sealed) { s.To = idOf(originKey("carol")) },
		"box too short":     func(s *eventlog.Sealed) { s.Box = s.Box[:seal.Overhead-1] },
		"box too long":      func(s *eventlog.Sealed) { s.Box = make([]byte, eventlog.MaxBoxLen+1) },
		"recipient is self": func(s *eventlog.Sealed) { s.To = s.Origin },
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			s := sealedFrom(t, "alice", idOf(bob), 1, "original")
			spoil(&s)
			if err := s.Verify(); err == nil {
				t.Error("Verify accepted it")
			}
		})
	}
}

// Mallory copies Alice's box into a message of her own, signed by her:
// the signature holds, but the box was bound to Alice and does not open.
func TestLiftedBoxDoesNotOpenUnderAnotherSender(t *testing.T) {
	bob := originKey("bob")
	alices := sealedFrom(t, "alice", idOf(bob), 1, "from alice")
	lifted := sealedFrom(t, "mallory", idOf(bob), 1, "decoy")
	lifted.Box = alices.Box
	lifted.Sign(originKey("mallory"))
	if err := lifted.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if text, err := lifted.Open(bob); err == nil {
		t.Errorf("bob read %q as mallory's", text)
	}
}

func TestPrivateMessagesShareTheSendersSequence(t *testing.T) {
	l := newLog(t)
	ctx := context.Background()
	bob := idOf(originKey("bob"))
	s, err := eventlog.NewSealed(l.Key(), bob, "Me", "psst")
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Append(ctx, eventlog.Chat{Name: "Me", Text: "hello"}, s, eventlog.Ack{To: bob, Ref: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := res[1].Body.(eventlog.Sealed)
	if got.OriginSeq != 2 || got.Origin != l.Self() {
		t.Errorf("sealed got origin %s seq %d, want own seq 2", got.Origin.Short(), got.OriginSeq)
	}
	if err := got.Verify(); err != nil {
		t.Errorf("own sealed message: %v", err)
	}
	if ack := res[2].Body.(eventlog.Ack); ack.OriginSeq != 3 || ack.Verify() != nil {
		t.Errorf("ack: seq %d, %v", ack.OriginSeq, ack.Verify())
	}
	// A copy coming back from the mesh is a duplicate.
	again, err := l.Append(ctx, got)
	if err != nil || !again[0].Duplicate {
		t.Errorf("re-append: %+v, %v", again, err)
	}
	events, err := l.ByOrigin(l.Self(), 0, 10)
	if err != nil || len(events) != 3 {
		t.Fatalf("ByOrigin: %d events, %v", len(events), err)
	}
	assertClean(t, l)
}

func TestSealedMessagesCountAgainstTheAuthorsBound(t *testing.T) {
	l := openLog(t, t.TempDir(), store.Options{}, eventlog.Options{MaxPerOrigin: 2})
	bob := idOf(originKey("bob"))
	var bodies []eventlog.Body
	for seq := uint64(1); seq <= 3; seq++ {
		bodies = append(bodies, sealedFrom(t, "alice", bob, seq, "x"))
	}
	res, err := l.Append(context.Background(), bodies...)
	if err != nil {
		t.Fatal(err)
	}
	if res[1].TooFarAhead || !res[2].TooFarAhead {
		t.Errorf("results %+v: want the third refused", res)
	}
}

func TestLastLinesHoldOwnPrivateMessagesAmongTheChats(t *testing.T) {
	l := newLog(t)
	ctx := context.Background()
	bob, carol := originKey("bob"), originKey("carol")
	toBob, err := eventlog.NewSealed(l.Key(), idOf(bob), "Me", "to bob")
	if err != nil {
		t.Fatal(err)
	}
	bodies := []eventlog.Body{
		eventlog.Chat{Name: "Me", Text: "one"},
		toBob,
		sealedFrom(t, "bob", l.Self(), 1, "to me"),
		sealedFrom(t, "carol", idOf(bob), 1, "not mine"), // carried, not history
		eventlog.Connect{ID: idOf(carol)},
		eventlog.Private{From: idOf(carol), To: l.Self(), Name: "Carol", Text: "old style", SentTime: chatEpoch, Ref: 1},
		eventlog.Chat{Name: "Me", Text: "two"},
	}
	if _, err := l.Append(ctx, bodies...); err != nil {
		t.Fatal(err)
	}
	texts := func(events []eventlog.Event) []string {
		var out []string
		for _, e := range events {
			switch b := e.Body.(type) {
			case eventlog.Chat:
				out = append(out, b.Text)
			case eventlog.Sealed:
				text, err := b.Open(l.Key())
				if err != nil {
					t.Fatalf("history holds a message this node cannot open: %v", err)
				}
				out = append(out, text)
			case eventlog.Private:
				out = append(out, b.Text)
			}
		}
		return out
	}
	for n, want := range map[int][]string{
		10: {"one", "to bob", "to me", "old style", "two"},
		3:  {"to me", "old style", "two"},
		1:  {"two"},
	} {
		got, err := l.LastLines(n)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(texts(got), want) {
			t.Errorf("LastLines(%d) = %q, want %q", n, texts(got), want)
		}
	}
}
