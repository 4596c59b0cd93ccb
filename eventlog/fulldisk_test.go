package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// smallDisk mounts a tmpfs of size bytes for the test; it skips the test
// when it may not mount (only root may, as in CI).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root; .ci/run runs this test as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestAFullDiskStopsTheLogAndLosesNothingAcknowledged fills a small disk:
// the append that does not fit fails naming the file and how much it
// needed, the log stops, nothing acknowledged is lost, and once there is
// room again a restart verifies clean and goes on.
func TestAFullDiskStopsTheLogAndLosesNothingAcknowledged(t *testing.T) {
	mnt := smallDisk(t, 1<<20)
	dir := filepath.Join(mnt, "node")
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("a line that fills the disk ", 100)
	var acked []uint64
	var failure error
	for i := 0; i < 10000 && failure == nil; i++ {
		res, err := l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: line})
		if err != nil {
			failure = err
			break
		}
		acked = append(acked, res[0].Body.(eventlog.Chat).OriginSeq)
	}
	if failure == nil {
		t.Fatalf("10000 appends fit on a 1 MiB disk")
	}
	t.Logf("after %d lines: %v", len(acked), failure)
	if !errors.Is(failure, store.ErrWriteFailed) || !strings.Contains(failure.Error(), st.Path()) ||
		!strings.Contains(failure.Error(), "disk is full") || !strings.Contains(failure.Error(), "needed") {
		t.Errorf("Append on a full disk = %v; want ErrWriteFailed naming %s, the full disk and what it needed", failure, st.Path())
	}
	select {
	case <-l.Stopped():
	default:
		t.Errorf("the log did not stop on a full disk")
	}
	l.Close()
	st.Close()

	if out, err := exec.Command("mount", "-o", "remount,size=16m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount with room: %v: %s", err, out)
	}
	l = openLog(t, dir, store.Options{}, eventlog.Options{})
	assertClean(t, l)
	held, err := l.ByOrigin(l.Self(), 0, len(acked)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) < len(acked) {
		t.Fatalf("the log holds %d own lines, %d were acknowledged", len(held), len(acked))
	}
	for i, e := range held[:len(acked)] {
		if got := e.Body.(eventlog.Chat).OriginSeq; got != acked[i] {
			t.Fatalf("own line %d is %d, want %d", i, got, acked[i])
		}
	}
	appendOK(t, l, eventlog.Chat{Name: "Me", Text: "room again"})
	assertClean(t, l)
}
