// Package control lets the reading commands (history, peers, events,
// verify) reach a node that is running on their data directory. The node
// holds the database lock, so they cannot open it themselves; instead they
// send their request over a unix socket in the data directory and the node
// answers from its own open log.
//
// The protocol is one JSON request line, then the answer as plain output
// bytes, then a trailer line: NUL "ok", or NUL "error: " and the message.
// The socket is created mode 0600 inside the 0700 data directory: only the
// node's own user can talk to it.
package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SocketName is the socket's file name inside the data directory.
const SocketName = "p2pchat.sock"

// ErrNoServer means no node answers on the data directory's socket.
var ErrNoServer = errors.New("no running node answers on the control socket")

// Request is what a reading command asks for.
type Request struct {
	Command string `json:"command"` // history, peers, events, verify
	N       int    `json:"n,omitempty"`
	Since   uint64 `json:"since,omitempty"`
	JSON    bool   `json:"json,omitempty"`
}

// Handler answers one request by writing its output to w.
type Handler func(ctx context.Context, req Request, w io.Writer) error

// Server answers requests on the socket until Close.
type Server struct {
	ln      net.Listener
	path    string
	handler Handler
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Listen creates the socket in dir. A socket file left by a node that
// crashed is replaced: the caller holds the data directory's lock, so no
// other node can be using it.
func Listen(dir string, handler Handler) (*Server, error) {
	path := filepath.Join(dir, SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, path: path, handler: handler, ctx: ctx, cancel: cancel}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			stop := context.AfterFunc(s.ctx, func() { c.Close() })
			defer stop()
			s.answer(c)
		}()
	}
}

func (s *Server) answer(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadBytes('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var req Request
	bw := bufio.NewWriter(c)
	ends := lineEnds{w: bw, last: '\n'}
	if err := json.Unmarshal(line, &req); err != nil {
		err = fmt.Errorf("bad request: %w", err)
		fmt.Fprintf(bw, "\x00error: %v\n", err)
	} else if err := s.handler(s.ctx, req, &ends); err != nil {
		// The trailer starts a line of its own; a newline is added only
		// when the answer stopped mid-line, never an empty line.
		if !ends.atLineStart() {
			bw.WriteByte('\n')
		}
		fmt.Fprintf(bw, "\x00error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		fmt.Fprint(bw, "\x00ok\n")
	}
	_ = bw.Flush()
}

// lineEnds passes writes on and remembers the last byte written.
type lineEnds struct {
	w    io.Writer
	last byte
}

func (l *lineEnds) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.last = p[n-1]
	}
	return n, err
}

func (l *lineEnds) atLineStart() bool { return l.last == '\n' }

// Close stops serving, waits for the answers in progress to end and
// removes the socket.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	_ = os.Remove(s.path)
	return err
}

// Ask sends req to the node running on dir and copies its answer to w.
// The error is ErrNoServer when nothing answers, or the node's error.
func Ask(ctx context.Context, dir string, req Request, w io.Writer) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, SocketName))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoServer, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %v", ErrNoServer, err)
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadBytes('\n')
		if trailer, ok := bytes.CutPrefix(line, []byte{0}); ok {
			trailer = bytes.TrimSpace(trailer)
			if bytes.Equal(trailer, []byte("ok")) {
				return nil
			}
			return errors.New(strings.TrimPrefix(string(trailer), "error: "))
		}
		if _, werr := w.Write(line); werr != nil {
			return werr
		}
		if err != nil {
			return fmt.Errorf("node ended the answer early: %w", err)
		}
	}
}
