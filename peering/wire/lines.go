package wire

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// FrameLines (version 4) carries a run of one origin's chained chat lines
// in answer to SYNC, where CATCHUP would carry them one a frame. The
// origin is written once, and a line's Prev is left out where the
// receiver can compute it: the hash of the line before it in the frame.
// That takes a chained 100-byte line from about 410 bytes as CATCHUP to
// about 260, and catch-up is paced in bytes (peering's answer and inbound
// limiters), so at the pacing bound it moves about 1.6 times as many
// lines a second.
const FrameLines = "LINES"

// LinesVersion is the lowest protocol version of a peer that reads LINES.
const LinesVersion = 4

// MaxLinesPerFrame bounds the lines of one LINES frame. A line of a short
// text is about 130 bytes, so the frame limit alone would let a frame
// carry some 500; 256 keeps what one frame makes a receiver decode, hash
// and queue at once to half an ingest batch (peering's maxIngestBatch),
// and 256 lines of 100 bytes already fill DefaultMaxFrame, so the bound
// costs next to nothing in bytes where lines are typical.
const MaxLinesPerFrame = 256

// LinesMsg is the payload of LINES: lines of Origin, seqs ascending.
type LinesMsg struct {
	Origin eventlog.NodeID `json:"origin"`
	Lines  []LineMsg       `json:"lines"`
}

// LineMsg is one line of a LINES frame: a ChatMsg without its origin and,
// where it follows the line before it in the frame, without its Prev.
type LineMsg struct {
	Seq uint64 `json:"seq"`
	// Time is in unix nanoseconds, as in ChatMsg.
	Time int64  `json:"time"`
	Name string `json:"name"`
	Text string `json:"text"`
	Sig  []byte `json:"sig"`
	// Prev is absent in lines[i], i > 0, exactly when the line's seq is
	// one past lines[i-1]'s and its Prev is the chain hash of lines[i-1]
	// (eventlog.ChainHash); in lines[0], an absent Prev means the line
	// has none.
	Prev []byte `json:"prev,omitempty"`
}

// Validate checks the bounds of a LINES frame: 1 to MaxLinesPerFrame
// lines, seqs strictly ascending and never 0, a Prev of
// eventlog.ChainHashSize bytes and never on seq 1, and a Prev left out
// only where it can be filled in from the line before. Names, texts and
// signatures are not checked here: the lines go where a CATCHUP line
// goes, and are checked there, as a CATCHUP line's are.
func (m LinesMsg) Validate() error {
	if m.Origin.IsZero() {
		return errors.New("LINES: origin is missing")
	}
	if len(m.Lines) == 0 || len(m.Lines) > MaxLinesPerFrame {
		return fmt.Errorf("LINES of %s: %d lines, want 1 to %d", m.Origin.Short(), len(m.Lines), MaxLinesPerFrame)
	}
	for i, l := range m.Lines {
		if err := l.validate(); err != nil {
			return fmt.Errorf("LINES of %s: line %d (seq %d): %w", m.Origin.Short(), i, l.Seq, err)
		}
		if i == 0 {
			continue
		}
		before := m.Lines[i-1].Seq
		if l.Seq <= before {
			return fmt.Errorf("LINES of %s: seq %d after seq %d, want seqs ascending", m.Origin.Short(), l.Seq, before)
		}
		if len(l.Prev) == 0 && l.Seq != before+1 {
			return fmt.Errorf("LINES of %s: seq %d has no prev and does not follow seq %d", m.Origin.Short(), l.Seq, before)
		}
	}
	return nil
}

// validate checks what the frame's shape depends on. Name and text are
// checked where every line's are, with its signature (eventlog), not here
// too: the read loop that decodes a LINES frame is one goroutine for the
// whole of a catch-up, and need not do that work twice.
func (l LineMsg) validate() error {
	if l.Seq == 0 {
		return errors.New("origin seq 0")
	}
	switch {
	case len(l.Prev) == 0:
	case len(l.Prev) != eventlog.ChainHashSize:
		return fmt.Errorf("prev has %d bytes, want %d", len(l.Prev), eventlog.ChainHashSize)
	case l.Seq == 1:
		return errors.New("prev on origin seq 1")
	}
	return nil
}

// Events returns the chat events the frame carries, with Origin and every
// Prev filled in: the very events the CATCHUP frames of the same lines
// give. Call Validate first, and Verify on each event before trusting it;
// a Prev filled in from an altered line before it fails that line's
// signature.
func (m LinesMsg) Events() []eventlog.Chat {
	out := make([]eventlog.Chat, len(m.Lines))
	for i, l := range m.Lines {
		out[i] = eventlog.Chat{
			Origin:     m.Origin,
			OriginSeq:  l.Seq,
			OriginTime: time.Unix(0, l.Time),
			Name:       l.Name,
			Text:       l.Text,
			Sig:        l.Sig,
			Prev:       l.Prev,
		}
		if i > 0 && len(l.Prev) == 0 {
			out[i].Prev = eventlog.ChainHash(out[i-1])
		}
	}
	return out
}

// DecodeLines parses and validates a LINES payload and returns its lines
// as chat events (LinesMsg.Events).
func DecodeLines(payload []byte) ([]eventlog.Chat, error) {
	var m LinesMsg
	if err := DecodeStrict(payload, &m); err != nil {
		return nil, fmt.Errorf("LINES: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.Events(), nil
}

// Chained reports whether c may go in a LINES frame: a chat line that
// names its predecessor. Other lines go as CATCHUP, which every version
// reads.
func Chained(c eventlog.Chat) bool { return len(c.Prev) > 0 }

// LinesPacker packs runs of one origin's chained chat lines into LINES
// frames of at most maxFrame bytes (counting the type, '|' and the
// newline) and MaxLinesPerFrame lines. Each line is encoded once, straight
// into the frame, so packing costs no more than encoding the lines did.
type LinesPacker struct {
	maxFrame int
	frame    []byte // the frame being packed, without its closing "]}\n"
	origin   eventlog.NodeID
	lines    int
	lastSeq  uint64
	lastHash []byte
	line     []byte // scratch for one line's JSON
}

// NewLinesPacker returns a packer of frames of at most maxFrame bytes;
// maxFrame <= 0 means DefaultMaxFrame.
func NewLinesPacker(maxFrame int) *LinesPacker {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &LinesPacker{maxFrame: maxFrame}
}

// linesTail closes a LINES frame.
const linesTail = "]}\n"

// Add places the chained line c in the frame being packed. When c cannot
// join it (another origin, a seq not above the last, no room left), the
// frame so far is returned done, with its line count, and c begins the
// next one. c must be Chained. The frame returned is the caller's; the
// packer never touches it again.
func (p *LinesPacker) Add(c eventlog.Chat) (done []byte, lines int, err error) {
	if !Chained(c) {
		return nil, 0, fmt.Errorf("LINES: line %d of %s does not chain", c.OriginSeq, c.Origin.Short())
	}
	if p.lines > 0 && (c.Origin != p.origin || c.OriginSeq <= p.lastSeq || p.lines == MaxLinesPerFrame) {
		done, lines = p.Flush()
	}
	if p.lines == 0 {
		return p.begin(c, done, lines)
	}
	l := LineMsg{Seq: c.OriginSeq, Time: wireTime(c.OriginTime), Name: c.Name, Text: c.Text, Sig: c.Sig, Prev: c.Prev}
	if c.OriginSeq == p.lastSeq+1 && bytes.Equal(c.Prev, p.lastHash) {
		l.Prev = nil
	}
	if p.line, err = appendJSON(p.line[:0], l); err != nil {
		return nil, 0, fmt.Errorf("encode LINES line: %w", err)
	}
	if len(p.frame)+1+len(p.line)+len(linesTail) > p.maxFrame {
		done, lines = p.Flush()
		return p.begin(c, done, lines)
	}
	p.frame = append(p.frame, ',')
	p.frame = append(p.frame, p.line...)
	p.lines++
	p.note(c)
	return nil, 0, nil
}

// begin starts a frame with c, whose Prev is then written out in full.
func (p *LinesPacker) begin(c eventlog.Chat, done []byte, lines int) ([]byte, int, error) {
	l := LineMsg{Seq: c.OriginSeq, Time: wireTime(c.OriginTime), Name: c.Name, Text: c.Text, Sig: c.Sig, Prev: c.Prev}
	var err error
	if p.line, err = appendJSON(p.line[:0], l); err != nil {
		return done, lines, fmt.Errorf("encode LINES line: %w", err)
	}
	if p.frame == nil {
		p.frame = make([]byte, 0, p.maxFrame)
	}
	p.frame = append(p.frame[:0], FrameLines+`|{"origin":"`...)
	p.frame = append(p.frame, c.Origin.String()...)
	p.frame = append(p.frame, `","lines":[`...)
	p.frame = append(p.frame, p.line...)
	if len(p.frame)+len(linesTail) > p.maxFrame {
		p.frame, p.lines = p.frame[:0], 0
		return done, lines, fmt.Errorf("LINES: line %d of %s: %w", c.OriginSeq, c.Origin.Short(), ErrFrameTooLarge)
	}
	p.origin, p.lines = c.Origin, 1
	p.note(c)
	return done, lines, nil
}

// note records c as the last line, for the next one to chain to.
func (p *LinesPacker) note(c eventlog.Chat) {
	p.lastSeq = c.OriginSeq
	p.lastHash = eventlog.ChainHash(c)
}

// Flush returns the frame being packed, done, and its line count; nil and
// 0 if none is.
func (p *LinesPacker) Flush() ([]byte, int) {
	if p.lines == 0 {
		return nil, 0
	}
	frame := append(p.frame, linesTail...)
	lines := p.lines
	p.frame, p.lines = nil, 0
	return frame, lines
}

// appendJSON appends the JSON of v, as AppendFrame encodes it, to dst.
func appendJSON(dst []byte, v any) ([]byte, error) {
	fe := frameEncoderPool.Get().(*frameEncoder)
	fe.buf = dst
	err := fe.enc.Encode(v)
	out := fe.buf
	fe.buf = nil
	frameEncoderPool.Put(fe)
	if err != nil {
		return dst, err
	}
	// Encode ends its output with a newline.
	return out[:len(out)-1], nil
}
