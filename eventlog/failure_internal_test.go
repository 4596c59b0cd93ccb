package eventlog

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

func openInternal(t *testing.T) *Log {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "node"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		st.Close()
	})
	return l
}

func testID(name string) NodeID {
	seed := sha256.Sum256([]byte("p2pchat internal test " + name))
	id, _ := IDFromKey(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
	return id
}

// TestAFailingEventFailsOnlyItsOwnRequestInABatch: one of 64 requests in
// one group commit touches a damaged peer row; the other 63 are stored,
// as bbolt's DB.Batch would retry them.
func TestAFailingEventFailsOnlyItsOwnRequestInABatch(t *testing.T) {
	l := openInternal(t)
	broken := testID("broken row")
	if err := l.st.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPeers).Put(broken[:], []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	const bad = 17
	var batch []*request
	for i := range 64 {
		body := Body(Connect{ID: testID("fine"), Addr: "10.0.0.1:1"})
		if i == bad {
			body = Connect{ID: broken, Addr: "10.0.0.2:2"}
		}
		batch = append(batch, &request{bodies: []Body{body}, done: make(chan struct{})})
	}
	l.run(batch)
	for i, r := range batch {
		<-r.done
		switch {
		case i == bad && r.err == nil:
			t.Errorf("request %d, about the damaged row, succeeded", i)
		case i != bad && (r.err != nil || len(r.results) != 1 || r.results[0].Seq == 0):
			t.Errorf("request %d = %+v, %v; want it stored", i, r.results, r.err)
		}
	}
	if last, err := l.LastSeq(); err != nil || last != 63 {
		t.Errorf("LastSeq = %d, %v; want the 63 good events", last, err)
	}
	if l.Err() != nil {
		t.Errorf("a bad event stopped the log: %v", l.Err())
	}
}

// TestAppendWaitsForWhatItHandedOverWhenItsContextEnds: a context that
// ends after the writer took the request must not turn a stored event
// into a reported failure.
func TestAppendWaitsForWhatItHandedOverWhenItsContextEnds(t *testing.T) {
	l := openInternal(t)
	// Hold bbolt's writer lock, so the writer takes the request and then
	// waits to commit it.
	holding, release := make(chan struct{}), make(chan struct{})
	go l.st.Update(func(*bolt.Tx) error {
		close(holding)
		<-release
		return nil
	})
	<-holding
	took := make(chan struct{})
	hook := func() { close(took) }
	l.took.Store(&hook)
	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		res []Result
		err error
	}
	done := make(chan outcome)
	go func() {
		res, err := l.Append(ctx, Connect{ID: testID("peer"), Addr: "10.0.0.1:1"})
		done <- outcome{res, err}
	}()
	<-took
	cancel()
	close(release)
	got := <-done
	if got.err != nil || len(got.res) != 1 || got.res[0].Seq != 1 {
		t.Fatalf("Append = %+v, %v; want the event stored and reported as stored", got.res, got.err)
	}
	if e, ok, err := l.Get(1); err != nil || !ok || e.Body.Type() != TypeConnect {
		t.Errorf("Get(1) = %v, %v, %v", e, ok, err)
	}
}
