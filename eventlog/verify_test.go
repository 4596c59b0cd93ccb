package eventlog_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// writeSampleLog fills a log in dir with a little of everything and
// closes it.
func writeSampleLog(t *testing.T, dir string) {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{Now: newClock().now})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := originKey("alice"), originKey("bob")
	appendOK(t, l,
		eventlog.Join{ID: idOf(bob), Name: "Bob", Addrs: []string{"10.0.0.2:8081"}, Version: 1},
		eventlog.Connect{ID: idOf(bob), Addr: "10.0.0.2:8081"},
		signedChat(alice, "Alice", 1, "one"),
		signedChat(alice, "Alice", 2, "two"),
		signedChat(bob, "Bob", 1, "hello"),
		eventlog.Chat{Name: "Me", Text: "mine"},
		signedChat(alice, "Alice", 3, "three"),
	)
	l.Close()
	st.Close()
}

func verifyDir(t *testing.T, dir string) eventlog.Report {
	t.Helper()
	l := openLog(t, dir, store.Options{ReadOnly: true}, eventlog.Options{ReadOnly: true})
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestVerifySummarisesACleanLog(t *testing.T) {
	dir := t.TempDir()
	writeSampleLog(t, dir)
	rep := verifyDir(t, dir)
	if len(rep.Problems) > 0 {
		t.Fatalf("Verify found problems in a clean log: %v", rep.Problems)
	}
	if rep.Events != 7 || rep.Peers != 1 || rep.Origins != 3 {
		t.Errorf("Verify = %d events, %d peers, %d origins; want 7, 1, 3", rep.Events, rep.Peers, rep.Origins)
	}
}

func TestVerifyIsCleanOnAnEmptyLog(t *testing.T) {
	l := newLog(t)
	if rep := assertClean(t, l); rep.Events != 0 {
		t.Errorf("Verify counted %d events in an empty log", rep.Events)
	}
}

func TestVerifyDetectsATamperedLog(t *testing.T) {
	bob := idOf(originKey("bob"))
	alice := idOf(originKey("alice"))
	key := func(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
	for _, c := range []struct {
		name   string
		tamper func(tx *bolt.Tx) error
		want   string
	}{
		{"peer row changed", func(tx *bolt.Tx) error {
			b := tx.Bucket(eventlog.BucketPeers)
			row := strings.Replace(string(b.Get(bob[:])), `"name":"Bob"`, `"name":"Mallory"`, 1)
			return b.Put(bob[:], []byte(row))
		}, "peer " + bob.Short() + " differs"},
		{"peer row removed", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketPeers).Delete(bob[:])
		}, "missing from the stored table"},
		{"peer row that no event makes", func(tx *bolt.Tx) error {
			id := peerID("ghost")
			return tx.Bucket(eventlog.BucketPeers).Put(id[:], []byte(`{"name":"Ghost"}`))
		}, "no event makes it"},
		{"peer row that is not JSON", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketPeers).Put(bob[:], []byte("{"))
		}, "decode peer row"},
		{"watermark raised", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketWatermarks).Put(alice[:], key(9))
		}, "watermark of " + alice.Short() + " is 9, the log says 3"},
		{"watermark removed", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketWatermarks).Delete(alice[:])
		}, "watermark of " + alice.Short() + " is missing"},
		{"event removed", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketEvents).Delete(key(2))
		}, "sequence gap: event 3 follows 1"},
		{"event that does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketEvents).Put(key(4), []byte{1, 99})
		}, "unknown type 99"},
		{"chat index entry removed", func(tx *bolt.Tx) error {
			return flipChatBit(tx, 3)
		}, "chat index has 4 entries, the log has 5"},
		{"chat index naming a connect", func(tx *bolt.Tx) error {
			return flipChatBit(tx, 2)
		}, "not a CHAT"},
		{"chat index block malformed", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketChats).Put(key(9), []byte{1})
		}, "malformed"},
		{"event key too short", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketEvents).Put([]byte{0, 0, 3}, []byte{1, 99})
		}, "event key of 3 bytes"},
		{"origin index key too short", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketOrigins).Bucket(alice[:]).Put([]byte{7}, []byte{1})
		}, "origin index row of " + alice.Short() + " is malformed"},
		{"origin bucket name too short", func(tx *bolt.Tx) error {
			_, err := tx.Bucket(eventlog.BucketOrigins).CreateBucket([]byte("ab"))
			return err
		}, "origin index key of 2 bytes"},
		{"peer key too short", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketPeers).Put([]byte("ab"), []byte("{}"))
		}, "peer table key of 2 bytes"},
		{"watermark key too short", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketWatermarks).Put([]byte("ab"), key(1))
		}, "watermark key of 2 bytes"},
		{"origin index entry removed", func(tx *bolt.Tx) error {
			return tx.Bucket(eventlog.BucketOrigins).Bucket(alice[:]).Delete(key(2))
		}, "origin index has 4 entries"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSampleLog(t, dir)
			db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(c.tamper); err != nil {
				t.Fatal(err)
			}
			db.Close()
			rep := verifyDir(t, dir)
			if !strings.Contains(strings.Join(rep.Problems, "\n"), c.want) {
				t.Errorf("Verify problems %q do not mention %q", rep.Problems, c.want)
			}
		})
	}
}

func TestVerifyStopsWhenItsContextEnds(t *testing.T) {
	l := newLog(t)
	appendOK(t, l, everyBody()...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Verify(ctx); err == nil {
		t.Errorf("Verify with an ended context succeeded")
	}
}

// flipChatBit toggles seq's bit in the chat index, as a tampered or
// damaged file would.
func flipChatBit(tx *bolt.Tx, seq uint64) error {
	b := tx.Bucket(eventlog.BucketChats)
	k := binary.BigEndian.AppendUint64(nil, seq/eventlog.ChatIndexBlock)
	var bits uint64
	if v := b.Get(k); len(v) == 8 {
		bits = binary.BigEndian.Uint64(v)
	}
	bits ^= 1 << (seq % eventlog.ChatIndexBlock)
	return b.Put(k, binary.BigEndian.AppendUint64(nil, bits))
}
