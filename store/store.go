// Package store owns a node's data directory and the bbolt file in it:
// creating and locking it, its bucket layout, the node's meta record
// (identity key, name, listen port, schema version) and schema migrations.
//
// It knows nothing of what the events in the file mean (package eventlog)
// nor of the network. A database that fails to open, belongs to another
// program or is newer than this binary is reported with an error naming the
// file and is never written to: Open validates it read-only before it takes
// the write lock.
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
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the name of the database file inside the data directory.
const FileName = "p2pchat.db"

// SchemaVersion is the layout this binary reads and writes.
const SchemaVersion = 2

// ChatIndexBlock is how many sequence numbers one row of the chat index
// covers (schema 2): the row is a bitmap of which of them are CHATs.
const ChatIndexBlock = 64

// Bucket names. The store creates them; package eventlog gives their
// contents meaning.
var (
	BucketMeta       = []byte("meta")
	BucketEvents     = []byte("events")     // local seq (8 bytes BE) -> encoded event
	BucketChats      = []byte("chats")      // seq / ChatIndexBlock -> bitmap of the CHATs among them
	BucketOrigins    = []byte("origins")    // origin ID -> nested bucket: origin seq (BE) -> local seq
	BucketPeers      = []byte("peers")      // projection: node ID -> peer record
	BucketWatermarks = []byte("watermarks") // projection: origin ID -> highest contiguous origin seq
)

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
)

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
}

// Store is an open data directory.
type Store struct {
	db   *bolt.DB
	dir  string
	path string
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
	} else {
		err = s.migrate()
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
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
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
	return &Store{db: db, dir: dir, path: path}, nil
}

// isTooSmall reports bbolt's error for a file shorter than two pages (a
// truncated file, or garbage whose first page happens to be readable).
// bbolt has no sentinel for it, only this text.
func isTooSmall(err error) bool {
	return err != nil && strings.Contains(err.Error(), "file size too small")
}

// checkMeta refuses files that are not ours or are newer than this binary.
func (s *Store) checkMeta() error {
	return s.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(BucketMeta)
		if meta == nil {
			if isEmpty(tx) {
				return nil // created but never initialised: migrate will do it
			}
			return fmt.Errorf("%w: %s has no p2pchat meta bucket", ErrCorrupt, s.path)
		}
		if !bytes.Equal(meta.Get(keyMagic), magic) {
			return fmt.Errorf("%w: %s has no p2pchat marker", ErrCorrupt, s.path)
		}
		v, err := schemaOf(meta)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
		}
		if v > SchemaVersion {
			return fmt.Errorf("%w: %s has schema version %d, this binary knows up to %d",
				ErrNewerSchema, s.path, v, SchemaVersion)
		}
		return nil
	})
}

// initialised reports whether the first migration has run: a first start
// may stop between bbolt creating the file and that commit.
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

func schemaOf(meta *bolt.Bucket) (uint64, error) {
	b := meta.Get(keySchema)
	if len(b) != 8 {
		return 0, errors.New("schema version missing")
	}
	return binary.BigEndian.Uint64(b), nil
}

// migrations[v] upgrades a database from schema v to v+1. Migration 0
// creates a fresh database.
var migrations = []func(tx *bolt.Tx) error{
	0: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{BucketMeta, BucketEvents, BucketChats, BucketOrigins, BucketPeers, BucketWatermarks} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(BucketMeta)
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generate identity: %w", err)
		}
		if err := meta.Put(keyIdentity, key.Seed()); err != nil {
			return err
		}
		return meta.Put(keyMagic, magic)
	},
	1: migrateChatIndex1to2,
}

// migrateChatIndex1to2 turns the chat index from one row per CHAT
// (schema 1: seq -> empty) into bitmap blocks, about 24 bytes less per
// line on disk.
func migrateChatIndex1to2(tx *bolt.Tx) error {
	old := tx.Bucket(BucketChats)
	blocks := map[uint64]uint64{}
	if err := old.ForEach(func(k, _ []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("chat index key of %d bytes", len(k))
		}
		seq := binary.BigEndian.Uint64(k)
		blocks[seq/ChatIndexBlock] |= 1 << (seq % ChatIndexBlock)
		return nil
	}); err != nil {
		return err
	}
	if err := tx.DeleteBucket(BucketChats); err != nil {
		return err
	}
	b, err := tx.CreateBucket(BucketChats)
	if err != nil {
		return err
	}
	for block, bits := range blocks {
		if err := b.Put(binary.BigEndian.AppendUint64(nil, block), binary.BigEndian.AppendUint64(nil, bits)); err != nil {
			return err
		}
	}
	return nil
}

// migrate brings the file up to SchemaVersion, one version per step, each
// step in its own transaction.
func (s *Store) migrate() error {
	if err := s.checkMeta(); err != nil {
		return err
	}
	current, err := s.schema()
	if err != nil || current == SchemaVersion {
		// Nothing to do: no write transaction, which would cost two
		// fsyncs on every start.
		return err
	}
	for {
		var done bool
		err := s.Update(func(tx *bolt.Tx) error {
			var v uint64
			if meta := tx.Bucket(BucketMeta); meta != nil {
				var err error
				if v, err = schemaOf(meta); err != nil {
					return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
				}
			}
			if v >= SchemaVersion {
				done = true
				return nil
			}
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate %s from schema %d: %w", s.path, v, err)
			}
			return tx.Bucket(BucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, v+1))
		})
		if err != nil || done {
			return err
		}
	}
}

// schema reads the stored schema version, 0 for a file never initialised.
func (s *Store) schema() (uint64, error) {
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

// Close releases the database and its lock. It is safe to call twice.
func (s *Store) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	return s.db.Close()
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// View runs fn in a read transaction. A panic inside bbolt (which it raises
// on some kinds of page corruption) becomes ErrCorrupt.
func (s *Store) View(fn func(*bolt.Tx) error) (err error) {
	defer s.recoverCorrupt(&err)
	return s.db.View(fn)
}

// Update runs fn in a read-write transaction, committed (and fsynced) when
// fn returns nil.
func (s *Store) Update(fn func(*bolt.Tx) error) (err error) {
	defer s.recoverCorrupt(&err)
	return s.db.Update(fn)
}

func (s *Store) recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, r)
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
