// Package store owns a node's data directory and the bbolt file in it:
// creating and locking it, the node's meta record (identity key, name,
// listen port, schema version) and running the schema migrations its user
// hands it, one version per transaction.
//
// It knows nothing of what the other buckets in the file hold or mean: the
// event log (package eventlog) owns their layout and its migrations, and
// passes them to Migrate. Nor does it know the network. A database that
// fails to open, belongs to another program or is newer than its user is
// reported with an error naming the file and is never written to: Open
// validates it read-only before it takes the write lock.
//
// Failure semantics: a transaction whose function fails is rolled back
// and its error returned unchanged. A commit that fails (a write or fsync
// of the file) leaves the file's durable state unknown to this process, so
// the store refuses every later write with ErrWriteFailed until it is
// opened again; reads go on. Only a panic raised inside bbolt (its answer
// to some damaged pages) is reported as ErrCorrupt; a panic in the
// caller's function is a bug and reported as ErrBug, never as damage.
package store

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the name of the database file inside the data directory.
const FileName = "p2pchat.db"

// BucketMeta holds the store's own records; every other bucket belongs to
// the migrations that create it.
var BucketMeta = []byte("meta")

var (
	keyMagic    = []byte("magic")
	keySchema   = []byte("schema")
	keyIdentity = []byte("identity")
	keyName     = []byte("name")
	keyPort     = []byte("port")
	magic       = []byte("p2pchat")
)

// Errors callers branch on.
var (
	// ErrDirInUse means another process holds the data directory.
	ErrDirInUse = errors.New("data directory is in use by another p2pchat process")
	// ErrCorrupt means the database file is damaged or not a p2pchat database.
	ErrCorrupt = errors.New("database is corrupt or not a p2pchat database")
	// ErrNewerSchema means the file was written by a newer p2pchat.
	ErrNewerSchema = errors.New("database was written by a newer p2pchat")
	// ErrNoNode means the directory holds no node yet.
	ErrNoNode = errors.New("no node in this data directory yet")
	// ErrOldSchema means a read-only open found a file that needs a
	// migration, which only a read-write open may run.
	ErrOldSchema = errors.New("database has an older layout; start the node once (p2pchat run) to upgrade it")
	// ErrWriteFailed means a commit failed: what it wrote may or may not
	// be on disk, so nothing more is written until the store is opened
	// again and reads back what the file holds.
	ErrWriteFailed = errors.New("a write to the database failed; restart p2pchat")
	// ErrBug means a panic in code that is not bbolt's: a programming
	// error, not damage to the file.
	ErrBug = errors.New("internal error (a bug in p2pchat, not damage to the database)")
)

// Migration upgrades the file from one schema version to the next, inside
// one write transaction.
type Migration func(tx *bolt.Tx) error

// Options tune Open.
type Options struct {
	// ReadOnly opens an existing database for reading only, with a shared
	// lock; it never creates anything.
	ReadOnly bool
	// LockTimeout bounds the wait for the file lock.
	LockTimeout time.Duration
	// NoSync skips fsync; only for benchmarks that want the baseline of
	// the code without the disk.
	NoSync bool
	// OpenFile opens the database file (os.OpenFile if nil). Fault
	// injection tests hand in their own, to make the disk fail.
	OpenFile func(name string, flag int, perm os.FileMode) (*os.File, error)
}

// Store is an open data directory.
type Store struct {
	db       *bolt.DB
	dir      string
	path     string
	readOnly bool
	snapshot bool // a temporary copy, removed by Close

	// failed is the first commit error; once set, writes are refused.
	failed atomic.Pointer[error]
}

// Open opens (and on first use creates) the data directory dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	path := filepath.Join(dir, FileName)
	if err := prepareDir(dir, opts.ReadOnly); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if opts.ReadOnly {
			return nil, fmt.Errorf("%w: %s", ErrNoNode, dir)
		}
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("open store %s: not a regular file", path)
	case fi.Size() == 0 && opts.ReadOnly:
		// A first start that stopped before bbolt initialised the file.
		return nil, fmt.Errorf("%w: %s", ErrNoNode, dir)
	case fi.Size() > 0 && !opts.ReadOnly:
		// Validate read-only first: a read-write open of a damaged or
		// foreign file may write to it (bbolt commits its freelist).
		ro, err := openBolt(dir, path, Options{ReadOnly: true, LockTimeout: opts.LockTimeout})
		if err != nil {
			return nil, err
		}
		if err := ro.checkMeta(); err != nil {
			ro.Close()
			return nil, err
		}
		ro.Close()
	}
	s, err := openBolt(dir, path, opts)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if err = s.checkMeta(); err == nil && !s.initialised() {
			err = fmt.Errorf("%w: %s", ErrNoNode, dir)
		}
	} else if err = s.checkMeta(); err == nil && !s.initialised() {
		if err = s.init(); err == nil {
			// The file's directory entry must outlive a power cut as
			// surely as the identity key just committed into it.
			err = syncDir(dir)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func prepareDir(dir string, readOnly bool) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("data directory %s is not a directory", dir)
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist) && readOnly:
		return fmt.Errorf("%w: %s does not exist", ErrNoNode, dir)
	case errors.Is(err, fs.ErrNotExist):
		existing := filepath.Dir(dir)
		for {
			if _, err := os.Stat(existing); err == nil || filepath.Dir(existing) == existing {
				break
			}
			existing = filepath.Dir(existing)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		// Make each new directory's entry durable in its parent, from
		// the first that existed down to dir itself.
		for d := dir; ; d = filepath.Dir(d) {
			if err := syncDir(filepath.Dir(d)); err != nil {
				return err
			}
			if filepath.Dir(d) == existing {
				return nil
			}
		}
	default:
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
}

// syncDir fsyncs a directory, so that the entries created in it survive a
// power cut (a file's own fsync does not cover its name).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func openBolt(dir, path string, opts Options) (s *Store, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
		NoSync:   opts.NoSync,
		OpenFile: opts.OpenFile,
	})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrDirInUse, dir)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum),
		errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrInvalidMapping),
		isTooSmall(err):
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{db: db, dir: dir, path: path, readOnly: opts.ReadOnly}, nil
}

// isTooSmall reports bbolt's error for a file shorter than two pages (a
// truncated file, or garbage whose first page happens to be readable).
// bbolt has no sentinel for it, only this text.
func isTooSmall(err error) bool {
	return err != nil && strings.Contains(err.Error(), "file size too small")
}

// checkMeta refuses files that are not ours.
func (s *Store) checkMeta() error {
	return s.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(BucketMeta)
		if meta == nil {
			if isEmpty(tx) {
				return nil // created but never initialised: init will do it
			}
			return fmt.Errorf("%w: %s has no p2pchat meta bucket", ErrCorrupt, s.path)
		}
		if !bytes.Equal(meta.Get(keyMagic), magic) {
			return fmt.Errorf("%w: %s has no p2pchat marker", ErrCorrupt, s.path)
		}
		if _, err := schemaOf(meta); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
		}
		return nil
	})
}

// initialised reports whether init has run: a first start may stop
// between bbolt creating the file and that commit.
func (s *Store) initialised() bool {
	var ok bool
	_ = s.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(BucketMeta) != nil
		return nil
	})
	return ok
}

func isEmpty(tx *bolt.Tx) bool {
	empty := true
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	return empty
}

// schemaOf reads the schema version; a file whose migrations never ran
// has none, which is version 0.
func schemaOf(meta *bolt.Bucket) (uint64, error) {
	b := meta.Get(keySchema)
	switch len(b) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("schema version has %d bytes", len(b))
}

// init gives a new file the store's own records: the meta bucket, the
// marker and the node's identity.
func (s *Store) init() error {
	return s.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(BucketMeta)
		if err != nil {
			return err
		}
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate identity: %w", err)
		}
		if err := meta.Put(keyIdentity, key.Seed()); err != nil {
			return err
		}
		return meta.Put(keyMagic, magic)
	})
}

// Migrate brings the file to schema len(steps): steps[v] upgrades it from
// version v to v+1, each in its own transaction, so a stop between two
// leaves a file at a version that the next start continues from. A file
// newer than len(steps) is refused with ErrNewerSchema and a read-only
// store that is older with ErrOldSchema; neither is written to.
func (s *Store) Migrate(steps []Migration) error {
	want := uint64(len(steps))
	current, err := s.Schema()
	switch {
	case err != nil:
		return err
	case current > want:
		return fmt.Errorf("%w: %s has schema version %d, this binary knows up to %d",
			ErrNewerSchema, s.path, current, want)
	case current == want:
		return nil
	case s.readOnly:
		return fmt.Errorf("%w: %s has schema version %d, this binary uses %d",
			ErrOldSchema, s.path, current, want)
	}
	for v := current; v < want; v++ {
		err := s.Update(func(tx *bolt.Tx) error {
			if err := steps[v](tx); err != nil {
				return fmt.Errorf("migrate %s from schema %d: %w", s.path, v, err)
			}
			return tx.Bucket(BucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, v+1))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Schema reads the stored schema version, 0 for a file never migrated.
func (s *Store) Schema() (uint64, error) {
	var v uint64
	err := s.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(BucketMeta)
		if meta == nil {
			return nil
		}
		var err error
		if v, err = schemaOf(meta); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
		}
		return nil
	})
	return v, err
}

// Close releases the database and its lock. It is safe to call twice. A
// snapshot's file is removed.
func (s *Store) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	err := s.db.Close()
	if s.snapshot {
		if rmErr := os.Remove(s.path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = rmErr
		}
	}
	return err
}

// ReadOnly reports whether the store was opened for reading only: then no
// process writes to the file while it is open.
func (s *Store) ReadOnly() bool { return s.readOnly }

// Snapshot copies the database as of now into a temporary file and opens
// the copy read-only; Close removes it. The copy takes one read transaction
// for as long as a sequential read of the file lasts, instead of pinning
// pages (and stalling the growth of the file) for as long as a slow
// reader would take.
func (s *Store) Snapshot() (*Store, error) {
	f, err := os.CreateTemp("", "p2pchat-snapshot-*.db")
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", s.path, err)
	}
	path := f.Name()
	f.Close()
	err = s.View(func(tx *bolt.Tx) error { return tx.CopyFile(path, 0o600) })
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("snapshot of %s into %s: %w", s.path, path, err)
	}
	snap, err := openBolt(filepath.Dir(path), path, Options{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	snap.readOnly, snap.snapshot = true, true
	return snap, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// View runs fn in a read transaction. A panic inside bbolt (which it raises
// on some kinds of page corruption) becomes ErrCorrupt, one in fn ErrBug.
func (s *Store) View(fn func(*bolt.Tx) error) (err error) {
	defer s.recoverPanic(&err)
	return s.db.View(fn)
}

// Update runs fn in a read-write transaction, committed (and fsynced) when
// fn returns nil. An error of fn is returned as it is, and nothing of the
// transaction is written. A failed commit is returned wrapping
// ErrWriteFailed and makes every later Update fail the same way.
func (s *Store) Update(fn func(*bolt.Tx) error) (err error) {
	if failed := s.failed.Load(); failed != nil {
		return *failed
	}
	defer s.recoverPanic(&err)
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	// A panic in fn must not leave the writer's lock taken.
	defer func() {
		if tx.DB() != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		stats := tx.Stats()
		err = s.writeFailed(err, stats.GetPageAlloc())
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// writeFailed describes a failed commit: which file, and for a full disk
// how much the commit needed to write and how much room there was.
func (s *Store) writeFailed(err error, need int64) error {
	if errors.Is(err, syscall.ENOSPC) {
		var used int64
		if fi, statErr := os.Stat(s.path); statErr == nil {
			used = fi.Size()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				used = st.Blocks * 512 // what it takes on disk, not its length
			}
		}
		var free uint64
		var fs syscall.Statfs_t
		if syscall.Statfs(s.dir, &fs) == nil {
			free = fs.Bavail * uint64(fs.Bsize)
		}
		return fmt.Errorf("%w: %s: the disk is full: the commit needed %d bytes of pages, the file takes %d bytes, %d bytes are free: %w",
			ErrWriteFailed, s.path, need, used, free, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrWriteFailed, s.path, err)
}

// Failed returns the commit error that stopped writes, nil while writes
// go on.
func (s *Store) Failed() error {
	if failed := s.failed.Load(); failed != nil {
		return *failed
	}
	return nil
}

// recoverPanic turns a panic into an error: ErrCorrupt when bbolt raised
// it (it panics on pages it cannot make sense of), ErrBug otherwise.
func (s *Store) recoverPanic(err *error) {
	r := recover()
	if r == nil {
		return
	}
	where := panicSite()
	if strings.HasPrefix(where, "go.etcd.io/bbolt.") || strings.HasPrefix(where, "go.etcd.io/bbolt/") {
		*err = fmt.Errorf("%w: %s: %v (in %s)", ErrCorrupt, s.path, r, where)
		return
	}
	*err = fmt.Errorf("%w: %v (in %s)", ErrBug, r, where)
}

// panicSite names the function that panicked, and where: the first frame
// below the runtime's panic machinery, seen from a deferred recover.
func panicSite() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic" || strings.HasPrefix(f.Function, "runtime.panic") ||
			f.Function == "runtime.sigpanic":
			inPanic = true
		case inPanic && !strings.HasPrefix(f.Function, "runtime."):
			return fmt.Sprintf("%s at %s:%d", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}

// Check runs bbolt's page-level consistency check over the whole file.
func (s *Store) Check() error {
	return s.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, errors.Join(errs...))
		}
		return nil
	})
}

// Identity returns the node's ed25519 key.
func (s *Store) Identity() (ed25519.PrivateKey, error) {
	var key ed25519.PrivateKey
	err := s.View(func(tx *bolt.Tx) error {
		seed := tx.Bucket(BucketMeta).Get(keyIdentity)
		if len(seed) != ed25519.SeedSize {
			return fmt.Errorf("%w: %s: identity key missing", ErrCorrupt, s.path)
		}
		key = ed25519.NewKeyFromSeed(seed)
		return nil
	})
	return key, err
}

// Name returns the stored node name, "" before the first start.
func (s *Store) Name() (string, error) {
	b, err := s.metaValue(keyName)
	return string(b), err
}

// Port returns the stored listen port, 0 before the first start.
func (s *Store) Port() (int, error) {
	b, err := s.metaValue(keyPort)
	if err != nil || b == nil {
		return 0, err
	}
	port, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: bad port %q", ErrCorrupt, s.path, b)
	}
	return port, nil
}

// SetName records the node name.
func (s *Store) SetName(name string) error { return s.setMeta(keyName, []byte(name)) }

// SetPort records the listen port.
func (s *Store) SetPort(port int) error {
	return s.setMeta(keyPort, []byte(strconv.Itoa(port)))
}

func (s *Store) metaValue(key []byte) ([]byte, error) {
	var out []byte
	err := s.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(BucketMeta).Get(key); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, err
}

func (s *Store) setMeta(key, value []byte) error {
	return s.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(BucketMeta).Put(key, value)
	})
}
