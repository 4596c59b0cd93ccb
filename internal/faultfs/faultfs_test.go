package faultfs_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/p2pchat/p2pchat/internal/faultfs"
)

// mount mounts a faultfs for the test, or skips it where FUSE cannot be
// mounted.
func mount(t *testing.T) (*faultfs.FS, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root; .ci/run runs this test as root")
	}
	dir := t.TempDir()
	f, err := faultfs.Mount(dir)
	if errors.Is(err, faultfs.ErrUnavailable) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return f, dir
}

const helperEnv = "P2PCHAT_FAULTFS_HELPER_DIR"

// TestHelperProcess is not a test: run by the tests below, it writes
// files in $P2PCHAT_FAULTFS_HELPER_DIR, some synced and some not.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("runs only as the child of another test")
	}
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	write := func(name, text string, sync bool) {
		f, err := os.Create(filepath.Join(dir, name))
		must(err)
		_, err = f.WriteString(text)
		must(err)
		if sync {
			must(f.Sync())
		}
		must(f.Close())
	}
	syncDir := func(path string) {
		d, err := os.Open(path)
		must(err)
		must(d.Sync())
		must(d.Close())
	}
	write("synced", "kept", true)
	write("unsynced", "lost", false)
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	syncDir(dir)
	// After the directory's fsync: the entry of a later file is lost
	// even though its content was synced.
	write("orphan", "synced, but its name was not", true)
	f, err := os.OpenFile(filepath.Join(dir, "synced"), os.O_WRONLY|os.O_APPEND, 0)
	must(err)
	_, err = f.WriteString(" and more, unsynced")
	must(err)
	must(f.Close())
}

func TestAPowerCutKeepsOnlyWhatWasSynced(t *testing.T) {
	f, mnt := mount(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mnt)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	after := t.TempDir()
	if err := f.Crash(after); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"synced": "kept", "unsynced": "", "sub": "(dir)"}
	entries, err := os.ReadDir(after)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			got[e.Name()] = "(dir)"
			continue
		}
		b, err := os.ReadFile(filepath.Join(after, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(b)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the power cut: %v, want %v", got, want)
	}
}
