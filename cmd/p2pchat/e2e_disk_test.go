package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
	"github.com/p2pchat/p2pchat/store"
)

// TestANodeOnAFullDiskStopsAndRecoversAfterARestart fills the disk under
// a running node: it exits 1 naming the file, and once there is room again
// verify is clean, the node comes back with every line it showed, and
// catch-up brings what its peer said meanwhile.
func TestANodeOnAFullDiskStopsAndRecoversAfterARestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root; .ci/run runs this test as root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	bob := startNode(t, "Bob")
	dir := filepath.Join(mnt, "node")
	node := p2pchat.StartListening(t, "--port", "0", "--uname", "Alice", "--data-dir", dir, "--peer", bob.Addr())
	node.WaitUsers(bob)
	pad := strings.Repeat("x", 3900)
	shown := 0
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatalf("1000 lines of 4 KB fit on a 1 MiB disk")
		}
		node.Send(fmt.Sprintf("line %d %s", i, pad))
		stopped := false
		e2e.WaitFor(t, e2e.Patience, func() bool {
			stopped = strings.Contains(node.Stderr(), "restart p2pchat")
			return stopped || node.CountLines(fmt.Sprintf("line %d ", i)) > 0
		}, fmt.Sprintf("line %d to be shown or the node to stop", i))
		if stopped {
			break
		}
		shown++
	}
	if code := node.Wait(); code != 1 {
		t.Errorf("the node exited %d on a full disk, want 1", code)
	}
	path := filepath.Join(dir, store.FileName)
	if stderr := node.Stderr(); !strings.Contains(stderr, path) || !strings.Contains(stderr, "disk is full") {
		t.Errorf("stderr does not name %s and the full disk:\n%s", path, stderr)
	}

	bob.Send("said while Alice was away")
	bob.WaitLine("said while Alice was away")

	if out, err := exec.Command("mount", "-o", "remount,size=16m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount with room: %v: %s", err, out)
	}
	if res := p2pchat.Run(t, "verify", "--data-dir", dir); res.Code != 0 {
		t.Fatalf("verify after the disk was freed exited %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	res := p2pchat.Run(t, "history", "--data-dir", dir)
	for i := range shown {
		if !strings.Contains(res.Stdout, fmt.Sprintf("line %d ", i)) {
			t.Fatalf("line %d was shown before the disk filled and is not in the history", i)
		}
	}
	again := restart(t, dir)
	again.WaitLine("said while Alice was away")
	again.Send("room again")
	bob.WaitLine("room again")
	again.Quit()
	bob.Quit()
}
