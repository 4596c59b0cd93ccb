package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultMaxFrame is the protocol's frame limit in bytes, counting the type,
// the '|' and the newline. A peer that sends more is broken or hostile.
const DefaultMaxFrame = 64 << 10

// maxFrameType bounds the type so that a reader can classify a line after
// looking at a few bytes only.
const maxFrameType = 16

// The frame types of protocol version 1. A reader returns these exact
// strings for known types, so callers may compare with ==.
const (
	FrameJoin    = "JOIN"
	FramePeers   = "PEERS"
	FrameChat    = "CHAT"
	FramePing    = "PING"
	FramePong    = "PONG"
	FrameGoodbye = "GOODBYE"
	FrameNick    = "NICK"
	FramePrivate = "PRIVATE"
)

// ErrFrameTooLarge reports a frame longer than the limit. On a connection it
// is final: the rest of the line was not read, so the stream cannot resync.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrMalformedFrame reports a line that is not `TYPE|payload`. The errors
// returned wrap it with the detail, so callers test with errors.Is.
var ErrMalformedFrame = errors.New("malformed frame")

// FrameReader splits a stream into frames. It reads through a buffer of the
// frame limit and hands out slices of that buffer, so a peer can make it
// hold no more than one frame's worth of memory, however it sends.
type FrameReader struct {
	br       *bufio.Reader
	maxFrame int
	err      error
}

// NewFrameReader returns a reader of frames of at most maxFrame bytes from
// r; maxFrame <= 0 means DefaultMaxFrame.
func NewFrameReader(r io.Reader, maxFrame int) *FrameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &FrameReader{br: bufio.NewReaderSize(r, maxFrame), maxFrame: maxFrame}
}

// Next returns the next frame's type and JSON payload. The payload aliases
// the reader's buffer and is valid only until the next call; the type of a
// known frame is one of the Frame constants.
//
// A clean end of stream between frames gives io.EOF, an end inside a frame
// io.ErrUnexpectedEOF. A line that is not a frame gives an error wrapping
// ErrMalformedFrame; it has been consumed, so reading may go on. Any other
// error (ErrFrameTooLarge, a read error) is returned again by every later
// call, because the position in the stream is lost.
func (fr *FrameReader) Next() (typ string, payload []byte, err error) {
	if fr.err != nil {
		return "", nil, fr.err
	}
	line, err := fr.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull),
		// bufio's buffer has a floor of 16 bytes, so tiny limits need
		// the length check too.
		err == nil && len(line) > fr.maxFrame:
		err = fmt.Errorf("%w: line longer than %d bytes", ErrFrameTooLarge, fr.maxFrame)
	case err == nil:
	case err == io.EOF && len(line) == 0:
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	default:
		err = fmt.Errorf("read frame: %w", err)
	}
	if err != nil {
		fr.err = err
		return "", nil, err
	}
	return parseFrame(line[:len(line)-1])
}

// parseFrame splits a line without its newline into type and payload.
func parseFrame(line []byte) (string, []byte, error) {
	head := line[:min(len(line), maxFrameType+1)]
	sep := bytes.IndexByte(head, '|')
	if sep < 0 {
		if len(line) > maxFrameType {
			return "", nil, fmt.Errorf("%w: no '|' after a type of at most %d characters: %.20q...", ErrMalformedFrame, maxFrameType, line)
		}
		return "", nil, fmt.Errorf("%w: no '|' in %q", ErrMalformedFrame, line)
	}
	if err := checkFrameType(line[:sep]); err != nil {
		return "", nil, err
	}
	return frameTypeString(line[:sep]), line[sep+1:], nil
}

// checkFrameType enforces 1 to 16 characters of [A-Z_]. It is generic so
// that neither the reader nor the writer converts to check.
func checkFrameType[T string | []byte](typ T) error {
	if len(typ) == 0 || len(typ) > maxFrameType {
		return fmt.Errorf("%w: type %q must have 1 to %d characters", ErrMalformedFrame, typ, maxFrameType)
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; (c < 'A' || c > 'Z') && c != '_' {
			return fmt.Errorf("%w: type %q may hold only A-Z and '_'", ErrMalformedFrame, typ)
		}
	}
	return nil
}

// frameTypeString returns the constant for a known type, which spares an
// allocation per frame; unknown types, rare by nature, are copied.
func frameTypeString(typ []byte) string {
	switch string(typ) {
	case FrameJoin:
		return FrameJoin
	case FramePeers:
		return FramePeers
	case FrameChat:
		return FrameChat
	case FramePing:
		return FramePing
	case FramePong:
		return FramePong
	case FrameGoodbye:
		return FrameGoodbye
	case FrameNick:
		return FrameNick
	case FramePrivate:
		return FramePrivate
	}
	return string(typ)
}

// frameEncoder lets a json.Encoder append straight to a caller's slice, so
// that encoding a frame costs no copy and, pooled, no encoder allocation.
type frameEncoder struct {
	buf []byte
	enc *json.Encoder
}

func (fe *frameEncoder) Write(p []byte) (int, error) {
	fe.buf = append(fe.buf, p...)
	return len(p), nil
}

var frameEncoderPool = sync.Pool{New: func() any {
	fe := &frameEncoder{}
	fe.enc = json.NewEncoder(fe)
	// Chat text is shown in terminals, not HTML; escaping '<' would only
	// bloat frames.
	fe.enc.SetEscapeHTML(false)
	return fe
}}

// AppendFrame appends the frame `typ|json(v)\n` to dst and returns the
// extended slice. It fails, leaving dst as it was, if typ is not a valid type
// (an error wrapping ErrMalformedFrame), if v does not encode, or if the frame
// is longer than maxFrame bytes (ErrFrameTooLarge); maxFrame <= 0 means
// DefaultMaxFrame. Appending lets a writer reuse one buffer for all frames.
func AppendFrame(dst []byte, typ string, v any, maxFrame int) ([]byte, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	if err := checkFrameType(typ); err != nil {
		return dst, err
	}
	start := len(dst)
	fe := frameEncoderPool.Get().(*frameEncoder)
	fe.buf = append(dst, typ...)
	fe.buf = append(fe.buf, '|')
	// Encode ends its output with the newline that ends the frame.
	err := fe.enc.Encode(v)
	out := fe.buf
	fe.buf = nil
	frameEncoderPool.Put(fe)
	if err != nil {
		return dst, fmt.Errorf("encode %s frame: %w", typ, err)
	}
	frame := out[start:]
	if len(frame) > maxFrame {
		return dst, fmt.Errorf("encode %s frame: %d bytes, limit %d: %w", typ, len(frame), maxFrame, ErrFrameTooLarge)
	}
	// encoding/json escapes control characters in strings and compacts what
	// Marshalers return, so only a broken Marshaler could get here.
	if bytes.IndexByte(frame[:len(frame)-1], '\n') >= 0 {
		return dst, fmt.Errorf("encode %s frame: JSON holds a raw newline: %w", typ, ErrMalformedFrame)
	}
	return out, nil
}

// EncodeFrame returns the frame `typ|json(v)\n` in a new slice; see
// AppendFrame for the errors.
func EncodeFrame(typ string, v any, maxFrame int) ([]byte, error) {
	return AppendFrame(nil, typ, v, maxFrame)
}
