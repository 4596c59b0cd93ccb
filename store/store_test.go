package store_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// helperEnv names the data directory the helper process holds open.
const helperEnv = "P2PCHAT_STORE_HELPER_DIR"

func openStore(t *testing.T, dir string, opts store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newNode creates a node in a fresh directory and closes it again.
func newNode(t *testing.T) (dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "node")
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return dir
}

// fileState is what "untouched" means for a file: its bytes and mtime.
type fileState struct {
	sum   [sha256.Size]byte
	mtime time.Time
	size  int64
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{sum: sha256.Sum256(data), mtime: fi.ModTime(), size: fi.Size()}
}

// withBolt runs fn in a write transaction on the file at path, bypassing
// the store, to craft files the store must cope with.
func withBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFirstOpenCreatesAPrivateDirAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "node")
	openStore(t, dir, store.Options{})
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{dir, os.ModeDir | 0o700},
		{filepath.Join(dir, store.FileName), 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("%s has mode %v, want %v", c.path, fi.Mode(), c.want)
		}
	}
}

func TestFirstOpenCreatesTheMetaRecordOnly(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "node"), store.Options{})
	if v, err := s.Schema(); err != nil || v != 0 {
		t.Errorf("Schema of a new file = %d, %v; want 0: its user's migrations have not run", v, err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check on a fresh store: %v", err)
	}
}

// steps are migrations that each add one bucket.
func steps(n int) []store.Migration {
	var out []store.Migration
	for i := range n {
		out = append(out, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte(fmt.Sprintf("step%d", i)))
			return err
		})
	}
	return out
}

func TestMigrateRunsEachMissingStepOnce(t *testing.T) {
	dir := newNode(t)
	s := openStore(t, dir, store.Options{})
	if err := s.Migrate(steps(2)); err != nil {
		t.Fatal(err)
	}
	// A second run finds nothing to do: CreateBucket of step0 would fail.
	if err := s.Migrate(steps(3)); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Schema(); err != nil || v != 3 {
		t.Errorf("Schema = %d, %v; want 3", v, err)
	}
}

func TestReadOnlyMigrateOfAnOlderFileAsksForAStart(t *testing.T) {
	dir := newNode(t)
	s := openStore(t, dir, store.Options{})
	if err := s.Migrate(steps(1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := stateOf(t, filepath.Join(dir, store.FileName))
	ro := openStore(t, dir, store.Options{ReadOnly: true})
	err := ro.Migrate(steps(2))
	if !errors.Is(err, store.ErrOldSchema) || !strings.Contains(err.Error(), "start the node once") ||
		!strings.Contains(err.Error(), ro.Path()) {
		t.Errorf("read-only Migrate = %v; want ErrOldSchema naming the file and saying to start the node", err)
	}
	ro.Close()
	if after := stateOf(t, filepath.Join(dir, store.FileName)); after != before {
		t.Errorf("a read-only open of an older file changed it")
	}
}

func TestIdentityIsStableAcrossReopen(t *testing.T) {
	dir := newNode(t)
	var keys [][]byte
	for range 2 {
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		key, err := s.Identity()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
		s.Close()
	}
	if len(keys[0]) == 0 || !bytes.Equal(keys[0], keys[1]) {
		t.Errorf("identity changed across reopen: %x then %x", keys[0], keys[1])
	}
}

func TestEveryNewNodeGetsItsOwnIdentity(t *testing.T) {
	a, err := openStore(t, newNode(t), store.Options{}).Identity()
	if err != nil {
		t.Fatal(err)
	}
	b, err := openStore(t, newNode(t), store.Options{}).Identity()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two new nodes share the identity %x", a)
	}
}

func TestNameAndPortAreUnsetBeforeTheFirstStart(t *testing.T) {
	s := openStore(t, newNode(t), store.Options{})
	name, err := s.Name()
	if err != nil || name != "" {
		t.Errorf("Name() = %q, %v; want empty", name, err)
	}
	port, err := s.Port()
	if err != nil || port != 0 {
		t.Errorf("Port() = %d, %v; want 0", port, err)
	}
}

func TestNameAndPortSurviveReopen(t *testing.T) {
	dir := newNode(t)
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetName("Alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPort(8080); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openStore(t, dir, store.Options{ReadOnly: true})
	if name, err := s.Name(); err != nil || name != "Alice" {
		t.Errorf("Name() = %q, %v; want Alice", name, err)
	}
	if port, err := s.Port(); err != nil || port != 8080 {
		t.Errorf("Port() = %d, %v; want 8080", port, err)
	}
}

func TestCloseTwiceIsSafe(t *testing.T) {
	s, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// assertDirInUse checks the contract for a second process on a directory
// in use: ErrDirInUse, within 2 s, with the directory in the message.
func assertDirInUse(t *testing.T, dir string, opts store.Options) {
	t.Helper()
	start := time.Now()
	s, err := store.Open(dir, opts)
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatalf("Open of a directory in use succeeded")
	}
	if !errors.Is(err, store.ErrDirInUse) {
		t.Errorf("error %v is not ErrDirInUse", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory %s", err, dir)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Open took %v to fail, want at most 2s", elapsed)
	}
}

func TestSecondOpenOfADirInUseFails(t *testing.T) {
	for _, c := range []struct {
		name   string
		holder store.Options
		second store.Options
	}{
		{"writer then writer", store.Options{}, store.Options{}},
		{"writer then reader", store.Options{}, store.Options{ReadOnly: true}},
		{"reader then writer", store.Options{ReadOnly: true}, store.Options{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := newNode(t)
			openStore(t, dir, c.holder)
			assertDirInUse(t, dir, c.second)
		})
	}
}

func TestTwoReadersShareADir(t *testing.T) {
	dir := newNode(t)
	openStore(t, dir, store.Options{ReadOnly: true})
	s := openStore(t, dir, store.Options{ReadOnly: true})
	if _, err := s.Identity(); err != nil {
		t.Errorf("second reader cannot read: %v", err)
	}
}

func TestOpenFailsWhileAnotherProcessHoldsTheDir(t *testing.T) {
	dir := newNode(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper process said %q, %v; want ready", line, err)
	}
	assertDirInUse(t, dir, store.Options{})
	assertDirInUse(t, dir, store.Options{ReadOnly: true})
}

// TestHelperProcess is not a test: re-executed by
// TestOpenFailsWhileAnotherProcessHoldsTheDir, it holds a data directory
// open until its standard input ends.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("runs only as the child of another test")
	}
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}

// assertRefused checks that both kinds of Open refuse the file at path with
// want, name it, and leave its bytes and mtime as they were.
func assertRefused(t *testing.T, dir string, want error) {
	t.Helper()
	path := filepath.Join(dir, store.FileName)
	before := stateOf(t, path)
	for _, opts := range []store.Options{{}, {ReadOnly: true}} {
		s, err := store.Open(dir, opts)
		if err == nil {
			s.Close()
			t.Fatalf("Open(ReadOnly=%v) accepted the file", opts.ReadOnly)
		}
		if !errors.Is(err, want) {
			t.Errorf("Open(ReadOnly=%v): error %v is not %v", opts.ReadOnly, err, want)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("Open(ReadOnly=%v): error %q does not name the file %s", opts.ReadOnly, err, path)
		}
	}
	if after := stateOf(t, path); after != before {
		t.Errorf("file changed: before %+v, after %+v", before, after)
	}
}

func TestOpenRefusesACorruptFileAndLeavesItUntouched(t *testing.T) {
	garbage := func(n int) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			data := make([]byte, n)
			rand.Read(data)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name  string
		craft func(t *testing.T, path string)
	}{
		{"a few bytes of text", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("not a database\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"one page of garbage", garbage(4096)},
		{"one and a half pages of garbage", garbage(6000)},
		{"64 KiB of garbage", garbage(64 << 10)},
		{"bbolt file of another program", func(t *testing.T, path string) {
			withBolt(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("foo"))
				if err != nil {
					return err
				}
				return b.Put([]byte("bar"), []byte("baz"))
			})
		}},
		{"p2pchat file without its marker", func(t *testing.T, path string) {
			s, err := store.Open(filepath.Dir(path), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			withBolt(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(store.BucketMeta).Delete([]byte("magic"))
			})
		}},
		{"p2pchat file cut short", func(t *testing.T, path string) {
			s, err := store.Open(filepath.Dir(path), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := os.Truncate(path, 5000); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.craft(t, filepath.Join(dir, store.FileName))
			assertRefused(t, dir, store.ErrCorrupt)
		})
	}
}

func TestMigrateRefusesANewerSchemaAndLeavesItUntouched(t *testing.T) {
	dir := newNode(t)
	path := filepath.Join(dir, store.FileName)
	withBolt(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(store.BucketMeta).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 3))
	})
	before := stateOf(t, path)
	s := openStore(t, dir, store.Options{})
	if err := s.Migrate(steps(2)); !errors.Is(err, store.ErrNewerSchema) {
		t.Errorf("Migrate = %v; want ErrNewerSchema", err)
	}
	s.Close()
	if after := stateOf(t, path); after != before {
		t.Errorf("refusing a newer file changed it")
	}
}

func TestOpenRefusesADataDirThatIsAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(dir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []store.Options{{}, {ReadOnly: true}} {
		_, err := store.Open(dir, opts)
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Open(ReadOnly=%v) = %v; want an error saying %s is not a directory", opts.ReadOnly, err, dir)
		}
	}
}

func TestOpenRefusesADatabasePathThatIsADirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(dir, store.Options{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Open = %v; want an error naming %s", err, path)
	}
}

func TestOpenReportsAnUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which ignores directory permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	_, err := store.Open(dir, store.Options{})
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open = %v; want a permission error naming %s", err, dir)
	}
}

func TestReadOnlyOpenOfAnEmptyPlaceReportsNoNode(t *testing.T) {
	for _, c := range []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"missing dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }},
		{"empty dir", func(t *testing.T) string { return t.TempDir() }},
		{"empty file", func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, store.FileName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"file bbolt created before the first migration", func(t *testing.T) string {
			dir := t.TempDir()
			withBolt(t, filepath.Join(dir, store.FileName), func(*bolt.Tx) error { return nil })
			return dir
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			_, before := os.Stat(filepath.Join(dir, store.FileName))
			_, err := store.Open(dir, store.Options{ReadOnly: true})
			if !errors.Is(err, store.ErrNoNode) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Open = %v; want ErrNoNode naming %s", err, dir)
			}
			if _, after := os.Stat(filepath.Join(dir, store.FileName)); (before == nil) != (after == nil) {
				t.Errorf("a read-only open created the database (stat before: %v, after: %v)", before, after)
			}
		})
	}
}

func TestOpenReportsAnUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which ignores file permissions")
	}
	dir := newNode(t)
	path := filepath.Join(dir, store.FileName)
	if err := os.Chmod(path, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(path, 0o600) })
	for _, opts := range []store.Options{{}, {ReadOnly: true}} {
		_, err := store.Open(dir, opts)
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(ReadOnly=%v) = %v; want a permission error naming %s", opts.ReadOnly, err, path)
		}
	}
}

func TestReadOnlyStoreRefusesWrites(t *testing.T) {
	s := openStore(t, newNode(t), store.Options{ReadOnly: true})
	if err := s.SetName("Mallory"); err == nil {
		t.Errorf("SetName on a read-only store succeeded")
	}
}

func TestAPanicInTheCallersCodeIsABugNotCorruption(t *testing.T) {
	s := openStore(t, t.TempDir(), store.Options{})
	for name, run := range map[string]func(func(*bolt.Tx) error) error{"View": s.View, "Update": s.Update} {
		err := run(func(*bolt.Tx) error { panic("index out of range in our own code") })
		if !errors.Is(err, store.ErrBug) || errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s = %v; want ErrBug and not ErrCorrupt", name, err)
		}
	}
	// The writer's lock was released: writes still work.
	if err := s.SetName("Alice"); err != nil {
		t.Errorf("SetName after a panic in Update: %v", err)
	}
}

func TestAPanicInsideBboltOnADamagedPageIsErrCorrupt(t *testing.T) {
	dir := newNode(t)
	path := filepath.Join(dir, store.FileName)
	withBolt(t, path, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("rows"))
		return err
	})
	withBolt(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("rows"))
		for i := range 2000 {
			if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), bytes.Repeat([]byte{'x'}, 100)); err != nil {
				return err
			}
		}
		return nil
	})
	var root int
	withBolt(t, path, func(tx *bolt.Tx) error {
		root = int(tx.Bucket([]byte("rows")).Root())
		return nil
	})
	// Stomp on the root page of that bucket, the way a bad disk would;
	// the pages bbolt reads to open the file stay intact.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := root * os.Getpagesize()
	for i := off + 8; i < off+os.Getpagesize(); i++ {
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		if errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("Open refused the file before any page was read: %v", err)
		}
		t.Fatalf("Open = %v", err)
	}
	defer s.Close()
	err = s.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("rows"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error { return nil })
	})
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("View over damaged pages = %v; want ErrCorrupt naming %s", err, path)
	}
}

func TestOpenFinishesAFirstStartThatStoppedEarly(t *testing.T) {
	for _, c := range []struct {
		name  string
		craft func(t *testing.T, path string)
	}{
		{"empty file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"file bbolt created before the first migration", func(t *testing.T, path string) {
			withBolt(t, path, func(*bolt.Tx) error { return nil })
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.craft(t, filepath.Join(dir, store.FileName))
			s := openStore(t, dir, store.Options{})
			if key, err := s.Identity(); err != nil || len(key) == 0 {
				t.Errorf("Identity = %x, %v; want a new key", key, err)
			}
		})
	}
}
