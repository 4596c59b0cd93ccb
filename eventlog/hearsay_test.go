package eventlog_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// hearsay appends a PEERS from teller naming ids and returns the event as
// stored.
func hearsay(t *testing.T, l *eventlog.Log, ids ...eventlog.NodeID) eventlog.Peers {
	t.Helper()
	b := eventlog.Peers{From: peerID("teller")}
	for _, id := range ids {
		b.Peers = append(b.Peers, eventlog.PeerInfo{ID: id, Name: "H", Addrs: []string{"10.1.0.1:9"}})
	}
	return appendOK(t, l, b)[0].Body.(eventlog.Peers)
}

func rowIDs(t *testing.T, l *eventlog.Log) map[eventlog.NodeID]eventlog.Peer {
	t.Helper()
	peers, err := l.Peers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[eventlog.NodeID]eventlog.Peer{}
	for _, p := range peers {
		out[p.ID] = p
	}
	return out
}

func ids(prefix string, n int) []eventlog.NodeID {
	out := make([]eventlog.NodeID, n)
	for i := range out {
		out[i] = peerID(prefix + string(rune('a'+i)))
	}
	return out
}

// TestAFullTableEvictsTheLeastRecentlyHeardHearsayRow: hearsay about a
// new node makes room by evicting the hearsay row heard of longest ago;
// peers known first hand are never evicted, and the eviction is in the
// log, so Verify and a reopened log agree.
func TestAFullTableEvictsTheLeastRecentlyHeardHearsayRow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{Now: newClock().now, MaxPeers: 6})
	if err != nil {
		t.Fatal(err)
	}
	joined, connected, dialed := peerID("joined"), peerID("connected"), peerID("dialed")
	h := ids("h", 4)
	appendOK(t, l, eventlog.Join{ID: joined, Name: "J", Version: 1})
	hearsay(t, l, h[0], connected)
	appendOK(t, l, eventlog.Connect{ID: connected, Addr: "10.0.0.2:1"}, eventlog.Disconnect{ID: connected, Reason: "EOF"})
	hearsay(t, l, h[1])
	hearsay(t, l, h[2], h[3])
	// A failed dial neither makes a row known nor refreshes it.
	appendOK(t, l, eventlog.DialFailed{ID: h[1], Addr: "10.1.0.1:9", Error: "refused"})
	// Heard again: h[0] is now more recent than h[1].
	hearsay(t, l, h[0])
	rows := rowIDs(t, l)
	if len(rows) != 6 {
		t.Fatalf("the table has %d rows, want 6", len(rows))
	}
	for _, id := range []eventlog.NodeID{joined, connected} {
		if rows[id].Hearsay() {
			t.Errorf("row %s is hearsay, though the log has its own events", id.Short())
		}
	}
	for _, id := range h {
		if !rows[id].Hearsay() {
			t.Errorf("row %s is not hearsay", id.Short())
		}
	}

	n := ids("n", 3)
	if got := hearsay(t, l, n[0]); !reflect.DeepEqual(got.Evicted, []eventlog.NodeID{h[1]}) || len(got.Peers) != 1 {
		t.Errorf("stored %d entries evicting %v, want 1 evicting h1 (heard longest ago)", len(got.Peers), got.Evicted)
	}
	// A victim is never a node the same event names.
	if got := hearsay(t, l, h[2], n[1]); !reflect.DeepEqual(got.Evicted, []eventlog.NodeID{h[3]}) {
		t.Errorf("evicted %v, want h3 (h2 is named by the same event)", got.Evicted)
	}
	assertClean(t, l)

	// The dialed node connects: known now, never evicted.
	hearsay(t, l, dialed)
	appendOK(t, l, eventlog.Connect{ID: dialed, Addr: "10.0.0.3:1"})
	// A flood: more names than there are hearsay rows to give way.
	flood := ids("f", 10)
	got := hearsay(t, l, flood...)
	rows = rowIDs(t, l)
	if len(rows) != 6 {
		t.Errorf("after the flood the table has %d rows, want 6", len(rows))
	}
	for _, id := range []eventlog.NodeID{joined, connected, dialed} {
		if _, ok := rows[id]; !ok {
			t.Errorf("known peer %s was evicted", id.Short())
		}
	}
	if len(got.Peers) != len(got.Evicted) || len(got.Evicted) != 3 {
		t.Errorf("the flood stored %d entries evicting %d rows, want 3 and 3 (the hearsay rows there were)", len(got.Peers), len(got.Evicted))
	}
	before := rowIDs(t, l)
	assertClean(t, l)
	l.Close()
	st.Close()

	// Reopened, the table reads back the same and verifies, and
	// eviction goes on from the stored index: the flood's entries were
	// heard at the same seq, so the least ID goes first.
	l = openLog(t, dir, store.Options{}, eventlog.Options{MaxPeers: 6})
	if after := rowIDs(t, l); !reflect.DeepEqual(after, before) {
		t.Errorf("reopened, the table differs:\nbefore %v\nafter  %v", before, after)
	}
	assertClean(t, l)
	first := slices.MinFunc(got.Peers, func(a, b eventlog.PeerInfo) int { return strings.Compare(string(a.ID[:]), string(b.ID[:])) }).ID
	if got := hearsay(t, l, peerID("late")); !reflect.DeepEqual(got.Evicted, []eventlog.NodeID{first}) {
		t.Errorf("after reopening evicted %v, want %s", got.Evicted, first.Short())
	}
	if _, ok := rowIDs(t, l)[peerID("late")]; !ok {
		t.Error("the late peer was not stored")
	}
	assertClean(t, l)
}

// TestATableOfKnownPeersDropsNewHearsay: with no hearsay row to give way,
// hearsay about new nodes is left out, as before eviction existed.
func TestATableOfKnownPeersDropsNewHearsay(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "node"), store.Options{}, eventlog.Options{MaxPeers: 3})
	for _, id := range ids("k", 3) {
		appendOK(t, l, eventlog.Join{ID: id, Name: "K", Version: 1})
	}
	got := hearsay(t, l, ids("x", 2)...)
	if len(got.Peers) != 0 || len(got.Evicted) != 0 {
		t.Errorf("stored %d entries evicting %v, want none", len(got.Peers), got.Evicted)
	}
	// Nor does a failed dial of such a node make it a row.
	if res := appendOK(t, l, eventlog.DialFailed{ID: peerID("x0"), Addr: "10.1.0.1:9"}); !res[0].NoRoom || res[0].Seq != 0 {
		t.Errorf("DIAL_FAILED of a node without a row in a full table: %+v, want NoRoom", res[0])
	}
	if res := appendOK(t, l, eventlog.DialFailed{ID: peerID("ka"), Addr: "10.1.0.1:9"}); res[0].NoRoom || res[0].Seq == 0 {
		t.Errorf("DIAL_FAILED of a known node: %+v, want it stored", res[0])
	}
	if rows := rowIDs(t, l); len(rows) != 3 {
		t.Errorf("the table has %d rows, want 3", len(rows))
	}
	assertClean(t, l)
}

// TestWhatACallerPutsInEvictedIsIgnored: only the log decides what is
// evicted; a caller cannot make it forget a peer.
func TestWhatACallerPutsInEvictedIsIgnored(t *testing.T) {
	l := newLog(t)
	known := peerID("known")
	appendOK(t, l, eventlog.Join{ID: known, Name: "K", Version: 1})
	res := appendOK(t, l, eventlog.Peers{From: peerID("teller"), Evicted: []eventlog.NodeID{known}})
	if got := res[0].Body.(eventlog.Peers).Evicted; len(got) != 0 {
		t.Errorf("stored Evicted %v", got)
	}
	if _, ok := rowIDs(t, l)[known]; !ok {
		t.Error("the known peer's row is gone")
	}
	assertClean(t, l)
}

// downgradeToSchemaThree rewrites a log as schema 3 wrote it: events in
// codec version 2 (PEERS without the evicted list, CHAT and NICK without
// Prev), peer rows and
// checkpoint rows without Heard, no hearsay index.
func downgradeToSchemaThree(t *testing.T, dir string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stripRows := func(b *bolt.Bucket) error {
		rows := map[string][]byte{}
		err := b.ForEach(func(k, v []byte) error {
			var m map[string]any
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			delete(m, "heard")
			nv, err := json.Marshal(m)
			rows[string(k)] = nv
			return err
		})
		for k, v := range rows {
			if err == nil {
				err = b.Put([]byte(k), v)
			}
		}
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(store.BucketMeta).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 3)); err != nil {
			return err
		}
		if err := tx.DeleteBucket(eventlog.BucketHearsay); err != nil {
			return err
		}
		events := tx.Bucket(eventlog.BucketEvents)
		old := map[string][]byte{}
		err := events.ForEach(func(k, v []byte) error {
			if v[0] != 4 {
				t.Fatalf("event %x has codec version %d", k, v[0])
			}
			v = append([]byte{2}, v[1:]...)
			// Version 3 added PEERS' evicted list, version 4 CHAT's
			// and NICK's Prev: each an empty list here, one zero byte.
			switch eventlog.Type(v[1]) {
			case eventlog.TypePeers, eventlog.TypeChat, eventlog.TypeNick:
				if v[len(v)-1] != 0 {
					t.Fatalf("%v %x evicted rows or chains before the downgrade", eventlog.Type(v[1]), k)
				}
				v = v[:len(v)-1]
			}
			old[string(k)] = v
			return nil
		})
		for k, v := range old {
			if err == nil {
				err = events.Put([]byte(k), v)
			}
		}
		if err != nil {
			return err
		}
		if err := stripRows(tx.Bucket(eventlog.BucketPeers)); err != nil {
			return err
		}
		if cp := tx.Bucket(eventlog.BucketLog).Bucket([]byte("peers")); cp != nil {
			return stripRows(cp)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestASchemaThreeFileIsMigratedWithHeardAsTheFoldMakesIt: a file from
// before eviction opens, every row gets the Heard the fold would give it
// (the checkpoint's rows included), Verify is clean, and the old hearsay
// rows are the first to give way.
func TestASchemaThreeFileIsMigratedWithHeardAsTheFoldMakesIt(t *testing.T) {
	for _, pruned := range []bool{false, true} {
		name := "without checkpoint"
		if pruned {
			name = "with checkpoint"
		}
		t.Run(name, func(t *testing.T) {
			clock := &simClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			dir := filepath.Join(t.TempDir(), "node")
			st, err := store.Open(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			l, err := eventlog.Open(st, eventlog.Options{Now: clock.now, KeepNetworkEvents: -1})
			if err != nil {
				t.Fatal(err)
			}
			h := ids("h", 5)
			known := peerID("known")
			hearsay(t, l, h[0], h[1], known)
			appendOK(t, l, eventlog.Connect{ID: known, Addr: "10.0.0.9:1"}, eventlog.DialFailed{ID: h[1], Addr: "10.1.0.1:9"})
			appendOK(t, l, eventlog.Join{ID: peerID("joined"), Name: "J", Version: 1}, signedChat(originKey("alice"), "Alice", 1, "hi"))
			clock.jump(48 * time.Hour)
			hearsay(t, l, h[2], h[0])
			appendOK(t, l, eventlog.DialFailed{ID: h[3], Addr: "10.1.0.1:9"}, eventlog.Ban{ID: h[2], Reason: "spam"})
			hearsay(t, l, h[4])
			if pruned {
				res, err := l.Prune(context.Background(), clock.now().Add(-24*time.Hour))
				if err != nil || res.Removed != 2 {
					t.Fatalf("Prune = %+v, %v; want the first day's 2 network events removed", res, err)
				}
			}
			want := rowIDs(t, l)
			if hs := []bool{want[h[0]].Hearsay(), want[h[1]].Hearsay(), want[h[2]].Hearsay(), want[h[3]].Hearsay(), want[h[4]].Hearsay(), want[known].Hearsay()}; !slices.Equal(hs, []bool{true, true, false, true, true, false}) {
				t.Fatalf("hearsay rows before the downgrade: %v", hs)
			}
			l.Close()
			st.Close()
			downgradeToSchemaThree(t, dir)

			l = openLog(t, dir, store.Options{}, eventlog.Options{MaxPeers: len(want)})
			if got := rowIDs(t, l); !reflect.DeepEqual(got, want) {
				t.Errorf("migrated table differs:\n got %v\nwant %v", got, want)
			}
			assertClean(t, l)
			// h1 was heard first and only once (its dial failure does
			// not count), then h0 was heard again.
			if got := hearsay(t, l, peerID("new")); !reflect.DeepEqual(got.Evicted, []eventlog.NodeID{h[1]}) {
				t.Errorf("evicted %v, want h1", got.Evicted)
			}
			assertClean(t, l)
		})
	}
}
