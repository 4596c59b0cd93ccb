package eventlog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// failingDisk opens the database file so that a test can make its writes
// fail, and later work again, without bbolt knowing: it swaps the file
// behind bbolt's descriptor for a read-only one.
type failingDisk struct {
	t    *testing.T
	mu   sync.Mutex
	file *os.File // bbolt's
	good int      // a copy of bbolt's descriptor, to swap back
}

func (d *failingDisk) open(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.file = f
	return f, err
}

// fail makes every write to the file fail with EBADF.
func (d *failingDisk) fail() {
	d.mu.Lock()
	defer d.mu.Unlock()
	good, err := syscall.Dup(int(d.file.Fd()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.good = good
	ro, err := os.Open(d.file.Name())
	if err != nil {
		d.t.Fatal(err)
	}
	defer ro.Close()
	if err := syscall.Dup2(int(ro.Fd()), int(d.file.Fd())); err != nil {
		d.t.Fatal(err)
	}
}

// heal gives bbolt its writable file back.
func (d *failingDisk) heal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := syscall.Dup2(d.good, int(d.file.Fd())); err != nil {
		d.t.Fatal(err)
	}
	syscall.Close(d.good)
}

// TestAFailedCommitStopsTheLogForGood: after a commit fails (the fsyncgate
// problem: the file's state is no longer known), every later Append fails
// with the same clear error even once the disk works again, and Stopped
// tells the node to stop. A restart reads back what the file holds.
func TestAFailedCommitStopsTheLogForGood(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	writeSampleLog(t, dir)
	disk := &failingDisk{t: t}
	st, err := store.Open(dir, store.Options{OpenFile: disk.open})
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendOK(t, l, eventlog.Chat{Name: "Me", Text: "before"}) // own line 2

	disk.fail()
	_, err = l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "lost"})
	if !errors.Is(err, store.ErrWriteFailed) || !strings.Contains(err.Error(), st.Path()) {
		t.Fatalf("Append on a failing disk = %v; want ErrWriteFailed naming %s", err, st.Path())
	}
	select {
	case <-l.Stopped():
	default:
		t.Fatalf("the log did not report that it stopped")
	}
	disk.heal()
	_, err = l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "after"})
	if !errors.Is(err, store.ErrWriteFailed) || !strings.Contains(err.Error(), "restart") {
		t.Errorf("Append after a failed commit = %v; want the sticky ErrWriteFailed asking for a restart", err)
	}
	l.Close()
	st.Close()

	l = openLog(t, dir, store.Options{}, eventlog.Options{})
	assertClean(t, l)
	res := appendOK(t, l, eventlog.Chat{Name: "Me", Text: "after the restart"})
	if got := res[0].Body.(eventlog.Chat).OriginSeq; got != 3 {
		t.Errorf("after the restart the next own line is %d, want 3 (the failed one was never acknowledged)", got)
	}
}

// TestABanBeyondWhatTheLogCanHoldIsRefused: 2562047h from now does not
// fit in int64 nanoseconds and used to wrap into the past; the epoch
// itself would read back as "for good".
func TestABanBeyondWhatTheLogCanHoldIsRefused(t *testing.T) {
	l := newLog(t)
	now := time.Now()
	for _, until := range []time.Time{
		now.Add(2562047 * time.Hour),
		time.Unix(0, 0),
		time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		_, err := l.Append(context.Background(), eventlog.Ban{ID: peerID("mallory"), Until: until})
		if !errors.Is(err, eventlog.ErrRefused) {
			t.Errorf("Ban until %v: Append = %v; want ErrRefused", until, err)
		}
	}
	if last, _ := l.LastSeq(); last != 0 {
		t.Errorf("a refused ban was stored: LastSeq = %d", last)
	}
	appendOK(t, l, eventlog.Ban{ID: peerID("mallory"), Until: now.Add(24 * time.Hour)}, eventlog.Ban{ID: peerID("eve")})
}

// TestThePeerTableBoundHoldsAgainstConcurrentHearsay: the bound is
// checked inside the transaction, so two callers that each see room
// cannot both fill it.
func TestThePeerTableBoundHoldsAgainstConcurrentHearsay(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "node"), store.Options{}, eventlog.Options{MaxPeers: 5})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			var list []eventlog.PeerInfo
			for j := range 3 {
				list = append(list, eventlog.PeerInfo{ID: peerID(string(rune('a'+i)) + string(rune('0'+j))), Name: "P"})
			}
			if _, err := l.Append(context.Background(), eventlog.Peers{From: peerID("teller"), Peers: list}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	peers, err := l.Peers()
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 5 {
		t.Errorf("the peer table has %d rows, want the bound of 5", len(peers))
	}
	assertClean(t, l)
}

// TestReadOnlyOpenOfASchemaOneFileAsksForAStart: reading commands on a
// file an older release wrote used to misread it (history empty, verify
// failing a healthy file).
func TestReadOnlyOpenOfASchemaOneFileAsksForAStart(t *testing.T) {
	dir := t.TempDir()
	writeSchemaOne(t, dir, 3)
	st, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = eventlog.Open(st, eventlog.Options{ReadOnly: true})
	if !errors.Is(err, store.ErrOldSchema) || !strings.Contains(err.Error(), "start the node once") {
		t.Errorf("read-only Open of a schema 1 file = %v; want ErrOldSchema saying to start the node once", err)
	}
}

// TestVerifyOfARunningLogIsCleanWhileAppendsGoOn: verify reads a snapshot,
// so appends from several producers neither wait for it nor make it see a
// half-written moment; each snapshot is consistent.
func TestVerifyOfARunningLogIsCleanWhileAppendsGoOn(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "node"), store.Options{NoSync: true}, eventlog.Options{})
	alice := originKey("alice")
	for i := range 10 {
		var batch []eventlog.Body
		for j := range 200 {
			batch = append(batch, signedChat(alice, "Alice", uint64(i*200+j+1), strings.Repeat("x", 200)))
		}
		appendOK(t, l, batch...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended := 0
	for p := range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := l.Append(context.Background(),
					eventlog.Chat{Name: "Me", Text: strings.Repeat("y", 1000)},
					eventlog.Connect{ID: peerID(string(rune('a' + p))), Addr: "10.0.0.1:1"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				appended++
				mu.Unlock()
			}
		})
	}
	for range 2 {
		rep := assertClean(t, l)
		if rep.Events < 2000 {
			t.Errorf("Verify saw %d events, want at least the 2000 written before", rep.Events)
		}
	}
	cancel()
	wg.Wait()
	if appended == 0 {
		t.Errorf("no append finished while verify ran")
	}
	assertClean(t, l)
}
