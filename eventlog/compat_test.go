package eventlog_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// encodeChatV1 writes a CHAT in codec version 1, which stored the origin
// time whole.
func encodeChatV1(local time.Time, c eventlog.Chat) []byte {
	b := []byte{1, byte(eventlog.TypeChat)}
	b = binary.AppendVarint(b, local.UnixNano())
	b = append(b, c.Origin[:]...)
	b = binary.AppendUvarint(b, c.OriginSeq)
	b = binary.AppendVarint(b, c.OriginTime.UnixNano())
	for _, s := range []string{c.Name, c.Text} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Sig)))
	return append(b, c.Sig...)
}

func TestVersionOneEventsStillDecode(t *testing.T) {
	chat := signedChat(originKey("alice"), "Alice", 3, "from an older release")
	local := chat.OriginTime.Add(1500 * time.Millisecond)
	e, err := eventlog.Decode(7, encodeChatV1(local, chat))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	got := e.Body.(eventlog.Chat)
	if !got.OriginTime.Equal(chat.OriginTime) || !e.Time.Equal(local) || got.Text != chat.Text {
		t.Errorf("decoded %+v at %v, want %+v at %v", got, e.Time, chat, local)
	}
	if err := got.Verify(); err != nil {
		t.Errorf("signature no longer verifies: %v", err)
	}
}

// TestSchemaOneDatabaseIsMigrated builds a database as schema 1 wrote it
// (a chat index row per CHAT, version 1 events) and opens it.
func TestSchemaOneDatabaseIsMigrated(t *testing.T) {
	dir := t.TempDir()
	writeSchemaOne(t, dir, 130)

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open schema 1: %v", err)
	}
	defer st.Close()
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	last, err := l.LastChats(3)
	if err != nil || len(last) != 3 || last[2].Seq != 130 || last[0].Seq != 128 {
		t.Fatalf("LastChats(3) after migration = %v, %v; want events 128-130", last, err)
	}
	rep, err := l.Verify(context.Background())
	if err != nil || len(rep.Problems) > 0 || rep.Events != 130 {
		t.Fatalf("Verify after migration = %+v, %v", rep, err)
	}
	// New lines go on in the new layout beside the migrated ones.
	if _, err := l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if last, _ := l.LastChats(2); len(last) != 2 || last[0].Seq != 130 || last[1].Seq != 131 {
		t.Fatalf("LastChats(2) = %v", last)
	}
}
