package eventlog_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/faultfs"
	"github.com/p2pchat/p2pchat/store"
)

// TestAcknowledgedAppendsSurviveAPowerCut runs the appending helper on a
// file system that forgets every write not fsynced, cuts the power at a
// random moment, and opens what is left: every acknowledged message is
// there, nothing else but whole, signed messages the helper appended, and
// the log verifies. A kill alone cannot show this (the page cache
// survives it); with P2PCHAT_CRASH_NOSYNC=1 this test fails, as it must.
func TestAcknowledgedAppendsSurviveAPowerCut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root; .ci/run runs this test as root")
	}
	rng := crashRand(t)
	state := t.TempDir() // the durable state between power cuts
	acked := map[eventlog.NodeID]map[uint64]bool{}
	for iter := range crashIterations(t) {
		mnt := t.TempDir()
		ffs, err := faultfs.Mount(mnt)
		if errors.Is(err, faultfs.ErrUnavailable) {
			t.Skipf("%v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		restoreDurably(t, state, mnt)

		dir := filepath.Join(mnt, "node")
		killedAfter := killAppenderAfter(t, dir, rng.IntN(200), acked)

		state = t.TempDir()
		if err := ffs.Crash(state); err != nil {
			t.Fatal(err)
		}
		if err := ffs.Unmount(); err != nil {
			t.Fatal(err)
		}
		if len(acked) > 0 {
			if _, err := os.Stat(filepath.Join(state, "node", store.FileName)); err != nil {
				t.Fatalf("iteration %d: after the power cut the database is gone: %v", iter, err)
			}
		}
		checkAfterPowerCut(t, filepath.Join(state, "node"), acked, iter, killedAfter)
	}
}

// checkAfterPowerCut opens what a power cut left and checks it against
// the acknowledgements.
func checkAfterPowerCut(t *testing.T, dir string, acked map[eventlog.NodeID]map[uint64]bool, iter, acks int) {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && len(acked) == 0 {
		return
	}
	// A copy: the state carried into the next round stays as the cut
	// left it, not as this open may tidy it.
	check := filepath.Join(t.TempDir(), "node")
	restoreDurably(t, dir, check)
	l := openLog(t, check, store.Options{}, eventlog.Options{})
	rep := assertClean(t, l)
	for origin, seqs := range acked {
		events, err := l.ByOrigin(origin, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		held := map[uint64]bool{}
		for _, e := range events {
			if err := e.Body.(eventlog.Chat).Verify(); err != nil {
				t.Errorf("iteration %d: message %s/%d after the power cut: %v", iter, origin.Short(), e.Body.(eventlog.Chat).OriginSeq, err)
			}
			_, s := e.Body.(eventlog.Signed).OriginKey()
			held[s] = true
		}
		for s := range seqs {
			if !held[s] {
				t.Errorf("iteration %d: acknowledged message %s/%d was lost in the power cut", iter, origin.Short(), s)
			}
		}
	}
	t.Logf("iteration %d: power cut after %d acks; %d events survived", iter, acks, rep.Events)
}

// restoreDurably copies the tree from into to (created if missing), and
// fsyncs every file and directory, so that on a faultfs it is all durable.
func restoreDurably(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(to, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		dir, err := os.Open(path)
		if err != nil {
			return err
		}
		defer dir.Close()
		return dir.Sync()
	})
	if err != nil {
		t.Fatal(err)
	}
}
