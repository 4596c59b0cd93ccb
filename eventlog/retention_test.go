package eventlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// simClock is a clock a test moves by hand, a second per reading.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func (c *simClock) jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// churnDay is one day of a node's life: every peer connects and drops
// twice and fails a few dials, and some lines are said.
func churnDay(peers []eventlog.NodeID, day, lines int) []eventlog.Body {
	var out []eventlog.Body
	for i, id := range peers {
		addr := fmt.Sprintf("10.0.%d.%d:7000", i/250, i%250+1)
		for range 2 {
			out = append(out,
				eventlog.Connect{ID: id, Addr: addr},
				eventlog.Disconnect{ID: id, Reason: "read: connection reset by peer"})
		}
		for range 5 {
			out = append(out, eventlog.DialFailed{ID: id, Addr: addr, Error: "dial tcp " + addr + ": connect: connection refused"})
		}
	}
	for l := range lines {
		out = append(out, eventlog.Chat{Name: "Me", Text: fmt.Sprintf("day %d, line %d: a chat line of ordinary length, about sixty bytes", day, l)})
	}
	return out
}

func TestPruneKeepsChatAndThePeerTableAndVerifyStaysMeaningful(t *testing.T) {
	clock := &simClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "node")
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := eventlog.Open(st, eventlog.Options{Now: clock.now, KeepNetworkEvents: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peers := []eventlog.NodeID{peerID("a"), peerID("b"), peerID("c")}
	appendOK(t, l, eventlog.Join{ID: peers[0], Name: "A", Addrs: []string{"10.0.0.1:7000"}, Version: 1})
	for day := range 10 {
		appendOK(t, l, churnDay(peers, day, 3)...)
		clock.jump(24 * time.Hour)
	}
	before, err := l.Peers()
	if err != nil {
		t.Fatal(err)
	}
	chatsBefore, _ := l.LastChats(1000)
	cutoff := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
	res, err := l.Prune(context.Background(), cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if want := 5 * len(peers) * 9; res.Removed != want {
		t.Errorf("Prune removed %d events, want the %d network events of the first five days", res.Removed, want)
	}
	after, _ := l.Peers()
	if !reflect.DeepEqual(before, after) {
		t.Errorf("pruning changed the peer table:\nbefore %+v\nafter  %+v", before, after)
	}
	if chats, _ := l.LastChats(1000); !reflect.DeepEqual(chats, chatsBefore) {
		t.Errorf("pruning lost chat lines: %d before, %d after", len(chatsBefore), len(chats))
	}
	var old int
	l.Scan(context.Background(), 1, func(e eventlog.Event) error {
		if e.Time.Before(cutoff) && (e.Body.Type() == eventlog.TypeConnect || e.Body.Type() == eventlog.TypeDialFailed) {
			old++
		}
		return nil
	})
	if old != 0 {
		t.Errorf("%d network events older than the cut-off are left", old)
	}
	assertClean(t, l)

	// More life, a second prune on top of the first checkpoint.
	appendOK(t, l, eventlog.Ban{ID: peers[1], Reason: "spam"})
	appendOK(t, l, churnDay(peers, 10, 1)...)
	if _, err := l.Prune(context.Background(), clock.now()); err != nil {
		t.Fatal(err)
	}
	assertClean(t, l)

	// A prune that removed the newest event does not let its number be
	// used again.
	appendOK(t, l, eventlog.Connect{ID: peers[0], Addr: "10.0.0.1:7000"})
	last, _ := l.LastSeq()
	clock.jump(48 * time.Hour)
	if _, err := l.Prune(context.Background(), clock.now()); err != nil {
		t.Fatal(err)
	}
	if res := appendOK(t, l, eventlog.Chat{Name: "Me", Text: "after"}); res[0].Seq != last+1 {
		t.Errorf("the append after pruning the newest event got seq %d, want %d", res[0].Seq, last+1)
	}
	assertClean(t, l)

	// The checkpoint is checked, not trusted: a changed row shows.
	l.Close()
	st.Close()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		rows := tx.Bucket(eventlog.BucketLog).Bucket([]byte("peers"))
		id := peers[2]
		return rows.Put(id[:], []byte(`{"name":"Mallory"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, dir)
	if len(rep.Problems) == 0 {
		t.Errorf("Verify did not notice a changed checkpoint row")
	}
}

// TestAYearOfChurn measures the file of a node that ran with 50 flapping
// peers, with and without retention: 75 simulated days by default (45
// under the race detector), so that the test run stays short;
// P2PCHAT_CHURN_DAYS=365 simulates the year that docs/BENCHMARKS.md
// reports.
func TestAYearOfChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated year; skipped with -short")
	}
	days := 75
	if raceEnabled {
		days = 45
	}
	if s := os.Getenv("P2PCHAT_CHURN_DAYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("P2PCHAT_CHURN_DAYS=%q: want a positive number", s)
		}
		days = n
	}
	var peers []eventlog.NodeID
	for i := range 50 {
		peers = append(peers, peerID(fmt.Sprint("churn", i)))
	}
	size := func(keep time.Duration) (int64, eventlog.Report) {
		clock := &simClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		dir := filepath.Join(t.TempDir(), "node")
		l := openLog(t, dir, store.Options{NoSync: true}, eventlog.Options{Now: clock.now, KeepNetworkEvents: -1})
		for day := range days {
			appendOK(t, l, churnDay(peers, day, 50)...)
			clock.jump(24 * time.Hour)
			if keep > 0 {
				if _, err := l.Prune(context.Background(), clock.now().Add(-keep)); err != nil {
					t.Fatal(err)
				}
			}
		}
		rep := assertClean(t, l)
		fi, err := os.Stat(filepath.Join(dir, store.FileName))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size(), rep
	}
	kept, keptRep := size(0)
	pruned, prunedRep := size(eventlog.DefaultKeepNetworkEvents)
	t.Logf("%d days, %d peers, %d events a day: file %.1f MB keeping everything (%d events), %.1f MB keeping %v of network events (%d events)",
		days, len(peers), len(churnDay(peers, 0, 50)), float64(kept)/1e6, keptRep.Events,
		float64(pruned)/1e6, eventlog.DefaultKeepNetworkEvents, prunedRep.Events)
	// bbolt grows its file in doubling steps, so over a short run the
	// two files may end in the same step; never may the pruned one be
	// larger, and it holds fewer events once a month has passed.
	if pruned > kept || (days > 31 && prunedRep.Events >= keptRep.Events) {
		t.Errorf("with retention the file is %d bytes (%d events), without %d (%d events)",
			pruned, prunedRep.Events, kept, keptRep.Events)
	}
}
