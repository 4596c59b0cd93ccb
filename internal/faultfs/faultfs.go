// Package faultfs is a file system for crash tests: it keeps in memory
// what programs write to it, and on a simulated power cut forgets every
// write that no fsync made durable.
//
// Killing a process leaves the kernel's page cache intact, so a crash test
// that only kills a writer passes even if the writer never calls fsync. A
// power cut loses what is not on the disk. faultfs models the strictest
// disk that POSIX allows: the content of a file is durable as of its last
// fsync (or fdatasync), and a directory's entries as of the directory's
// last fsync; a new file whose directory was never synced disappears
// whole. Crash copies the durable state out into ordinary files.
//
// It is served with FUSE (github.com/hanwen/go-fuse), which needs root
// or fusermount, and /dev/fuse. No library fits: the FUSE loopback file
// systems pass writes through to a real disk, whose page cache keeps them.
// The process that mounts it must not itself read or write the mount: a
// page fault in that process on a mapped file could wait for the very
// server goroutines that cannot run; run the program under test as a
// child process.
package faultfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is a mounted faultfs.
type FS struct {
	mu     sync.Mutex
	root   *dir
	server *fuse.Server
	dir    string
}

// ErrUnavailable means FUSE cannot be mounted here.
var ErrUnavailable = errors.New("FUSE is not available")

// Mount mounts an empty faultfs at mountpoint.
func Mount(mountpoint string) (*FS, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	f := &FS{dir: mountpoint}
	f.root = &dir{fs: f, durable: map[string]node{}}
	timeout := time.Duration(0) // the kernel must ask for every attribute: sizes change under it
	server, err := fs.Mount(mountpoint, f.root, &fs.Options{
		MountOptions:    fuse.MountOptions{FsName: "faultfs", Name: "faultfs", DirectMount: true},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: mount %s: %v", ErrUnavailable, mountpoint, err)
	}
	f.server = server
	return f, nil
}

// Unmount unmounts the file system; its content is gone.
func (f *FS) Unmount() error { return f.server.Unmount() }

// Crash writes the durable state, what a power cut would leave, into the
// directory to (which must exist) as ordinary files. Writes that reach the
// file system meanwhile are not in it.
func (f *FS) Crash(to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeDurable(to, f.root.durable)
}

func writeDurable(to string, entries map[string]node) error {
	for name, n := range entries {
		path := filepath.Join(to, name)
		switch n := n.(type) {
		case *dir:
			if err := os.Mkdir(path, 0o700); err != nil {
				return err
			}
			if err := writeDurable(path, n.durable); err != nil {
				return err
			}
		case *file:
			if err := os.WriteFile(path, n.durable, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// node is a *dir or a *file.
type node interface{ isNode() }

// dir is a directory; its entries live in the go-fuse inode tree, and the
// durable ones, as of its last fsync, here.
type dir struct {
	fs.Inode
	fs      *FS
	durable map[string]node
}

func (*dir) isNode() {}

var (
	_ fs.NodeMkdirer   = (*dir)(nil)
	_ fs.NodeCreater   = (*dir)(nil)
	_ fs.NodeFsyncer   = (*dir)(nil)
	_ fs.NodeUnlinker  = (*dir)(nil)
	_ fs.NodeGetattrer = (*dir)(nil)
)

func (d *dir) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o700
	return 0
}

func (d *dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	child := &dir{fs: d.fs, durable: map[string]node{}}
	out.Mode = syscall.S_IFDIR | 0o700
	return d.NewInode(ctx, child, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	child := &file{fs: d.fs}
	out.Mode = syscall.S_IFREG | 0o600
	return d.NewInode(ctx, child, fs.StableAttr{Mode: syscall.S_IFREG}), nil, 0, 0
}

func (d *dir) Unlink(ctx context.Context, name string) syscall.Errno { return 0 }

// Fsync makes the directory's present entries durable.
func (d *dir) Fsync(ctx context.Context, _ fs.FileHandle, _ uint32) syscall.Errno {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	d.durable = map[string]node{}
	for name, child := range d.Children() {
		if n, ok := child.Operations().(node); ok {
			d.durable[name] = n
		}
	}
	return 0
}

// file is a regular file: what programs see, and what an fsync made
// durable.
type file struct {
	fs.Inode
	fs      *FS
	current []byte
	durable []byte
}

func (*file) isNode() {}

var (
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeReader    = (*file)(nil)
	_ fs.NodeWriter    = (*file)(nil)
	_ fs.NodeFsyncer   = (*file)(nil)
	_ fs.NodeGetattrer = (*file)(nil)
	_ fs.NodeSetattrer = (*file)(nil)
	_ fs.NodeFlusher   = (*file)(nil)
)

func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, 0
}

func (f *file) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	out.Mode = syscall.S_IFREG | 0o600
	out.Size = uint64(len(f.current))
	out.Blocks = (out.Size + 511) / 512
	return 0
}

func (f *file) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f.fs.mu.Lock()
	if size, ok := in.GetSize(); ok {
		f.current = resize(f.current, int(size))
	}
	f.fs.mu.Unlock()
	return f.Getattr(ctx, nil, out)
}

func (f *file) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if off >= int64(len(f.current)) {
		return fuse.ReadResultData(nil), 0
	}
	n := copy(dest, f.current[off:])
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *file) Write(ctx context.Context, _ fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if end := int(off) + len(data); end > len(f.current) {
		f.current = resize(f.current, end)
	}
	copy(f.current[off:], data)
	return uint32(len(data)), 0
}

// Fsync makes the file's present content durable.
func (f *file) Fsync(ctx context.Context, _ fs.FileHandle, _ uint32) syscall.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.durable = append([]byte(nil), f.current...)
	return 0
}

// Flush (on close) makes nothing durable.
func (f *file) Flush(ctx context.Context, _ fs.FileHandle) syscall.Errno { return 0 }

func resize(b []byte, n int) []byte {
	if n <= len(b) {
		return b[:n]
	}
	return append(b, make([]byte, n-len(b))...)
}
