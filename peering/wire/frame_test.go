package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
	"pgregory.net/rapid"
)

func TestFrameReaderSplitsEachLineIntoTypeAndPayload(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		typ     string
		payload string
		err     error
	}{
		{name: "known type", line: "CHAT|{\"text\":\"hi\"}\n", typ: wire.FrameChat, payload: `{"text":"hi"}`},
		{name: "unknown type is passed on", line: "FUTURE_THING|[1]\n", typ: "FUTURE_THING", payload: "[1]"},
		{name: "type of 16 characters", line: "ABCDEFGHIJKLMNOP|{}\n", typ: "ABCDEFGHIJKLMNOP", payload: "{}"},
		{name: "payload may hold '|'", line: "GOODBYE|{\"reason\":\"a|b\"}\n", typ: wire.FrameGoodbye, payload: `{"reason":"a|b"}`},
		{name: "empty payload is left to the decoder", line: "PING|\n", typ: wire.FramePing, payload: ""},
		{name: "type of 17 characters", line: "ABCDEFGHIJKLMNOPQ|{}\n", err: wire.ErrMalformedFrame},
		{name: "empty type", line: "|{}\n", err: wire.ErrMalformedFrame},
		{name: "lower-case type", line: "chat|{}\n", err: wire.ErrMalformedFrame},
		{name: "digit in type", line: "CHAT2|{}\n", err: wire.ErrMalformedFrame},
		{name: "space before '|'", line: "CHAT |{}\n", err: wire.ErrMalformedFrame},
		{name: "no '|'", line: "CHAT{}\n", err: wire.ErrMalformedFrame},
		{name: "no '|' in a long line", line: strings.Repeat("A", 40) + "\n", err: wire.ErrMalformedFrame},
		{name: "empty line", line: "\n", err: wire.ErrMalformedFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, payload, err := wire.NewFrameReader(strings.NewReader(tt.line), 0).Next()
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Next() error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Next() error = %v", err)
			}
			if typ != tt.typ || string(payload) != tt.payload {
				t.Fatalf("Next() = %q, %q; want %q, %q", typ, payload, tt.typ, tt.payload)
			}
		})
	}
}

func TestFrameReaderReturnsFramesInOrderThenEOF(t *testing.T) {
	fr := wire.NewFrameReader(strings.NewReader("PING|{\"nonce\":1}\nPONG|{\"nonce\":1}\nGOODBYE|{}\n"), 0)
	for _, want := range []string{wire.FramePing, wire.FramePong, wire.FrameGoodbye} {
		typ, _, err := fr.Next()
		if err != nil || typ != want {
			t.Fatalf("Next() = %q, %v; want %q", typ, err, want)
		}
	}
	if _, _, err := fr.Next(); err != io.EOF {
		t.Fatalf("Next() at the end = %v, want io.EOF", err)
	}
}

func TestFrameReaderReportsAStreamCutInsideAFrame(t *testing.T) {
	fr := wire.NewFrameReader(strings.NewReader("PING|{}\nCHAT|{\"te"), 0)
	if _, _, err := fr.Next(); err != nil {
		t.Fatalf("first Next() = %v", err)
	}
	if _, _, err := fr.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("Next() on a cut frame = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestFrameReaderGoesOnAfterAMalformedLine(t *testing.T) {
	fr := wire.NewFrameReader(strings.NewReader("nonsense\nPING|{}\n"), 0)
	if _, _, err := fr.Next(); !errors.Is(err, wire.ErrMalformedFrame) {
		t.Fatalf("Next() = %v, want wire.ErrMalformedFrame", err)
	}
	if typ, _, err := fr.Next(); err != nil || typ != wire.FramePing {
		t.Fatalf("Next() after the bad line = %q, %v; want PING", typ, err)
	}
}

func TestFrameReaderAcceptsAFrameOfExactlyTheLimit(t *testing.T) {
	for _, limit := range []int{8, 16, 17, 256, wire.DefaultMaxFrame} {
		line := "PING|" + strings.Repeat("x", limit-len("PING|\n")) + "\n"
		typ, payload, err := wire.NewFrameReader(strings.NewReader(line), limit).Next()
		if err != nil || typ != wire.FramePing || len(payload) != limit-6 {
			t.Fatalf("limit %d: Next() = %q, %d bytes, %v", limit, typ, len(payload), err)
		}
	}
}

func TestFrameReaderRefusesAFrameOneByteOverTheLimitForGood(t *testing.T) {
	for _, limit := range []int{8, 16, 17, 256, wire.DefaultMaxFrame} {
		line := "PING|" + strings.Repeat("x", limit+1-len("PING|\n")) + "\nPING|{}\n"
		fr := wire.NewFrameReader(strings.NewReader(line), limit)
		for range 2 {
			if _, _, err := fr.Next(); !errors.Is(err, wire.ErrFrameTooLarge) {
				t.Fatalf("limit %d: Next() = %v, want wire.ErrFrameTooLarge", limit, err)
			}
		}
	}
}

// frameTestEndlessReader is a peer that sends one line forever.
type frameTestEndlessReader struct{ read int }

func (r *frameTestEndlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	r.read += len(p)
	return len(p), nil
}

func TestFrameReaderStopsReadingAtTheLimit(t *testing.T) {
	src := &frameTestEndlessReader{}
	if _, _, err := wire.NewFrameReader(src, 256).Next(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("Next() = %v, want wire.ErrFrameTooLarge", err)
	}
	if src.read > 256 {
		t.Fatalf("read %d bytes for a limit of 256", src.read)
	}
}

type frameTestFailingReader struct{ err error }

func (r frameTestFailingReader) Read([]byte) (int, error) { return 0, r.err }

func TestFrameReaderPassesOnReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	fr := wire.NewFrameReader(frameTestFailingReader{boom}, 0)
	for range 2 {
		if _, _, err := fr.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next() = %v, want it to wrap %v", err, boom)
		}
	}
}

func TestFrameReaderReadsKnownFramesWithoutAllocating(t *testing.T) {
	const frames = 200
	stream := bytes.Repeat([]byte("CHAT|{\"text\":\"hello\"}\n"), frames+1)
	fr := wire.NewFrameReader(bytes.NewReader(stream), 0)
	allocs := testing.AllocsPerRun(frames, func() {
		if _, _, err := fr.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Next() allocates %v times per frame, want 0", allocs)
	}
}

func TestAppendFrameWritesTypePipeJSONNewline(t *testing.T) {
	got, err := wire.AppendFrame([]byte("PONG|{}\n"), wire.FrameGoodbye, wire.GoodbyeMsg{Reason: "<full> & done"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// HTML characters stay as they are: frames go to terminals, not browsers.
	want := "PONG|{}\nGOODBYE|{\"reason\":\"<full> & done\"}\n"
	if string(got) != want {
		t.Fatalf("wire.AppendFrame() = %q, want %q", got, want)
	}
}

func TestAppendFrameEscapesNewlinesInStrings(t *testing.T) {
	got, err := wire.EncodeFrame(wire.FrameGoodbye, wire.GoodbyeMsg{Reason: "a\nb\rc"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(got, []byte("\n")) != 1 {
		t.Fatalf("frame %q holds a raw newline inside", got)
	}
}

func TestAppendFrameRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		v    any
		max  int
		err  error
	}{
		{name: "lower-case type", typ: "ping", v: wire.PingMsg{}, err: wire.ErrMalformedFrame},
		{name: "empty type", typ: "", v: wire.PingMsg{}, err: wire.ErrMalformedFrame},
		{name: "type with '|'", typ: "PI|NG", v: wire.PingMsg{}, err: wire.ErrMalformedFrame},
		{name: "frame over the limit", typ: wire.FrameGoodbye, v: wire.GoodbyeMsg{Reason: strings.Repeat("x", 100)}, max: 64, err: wire.ErrFrameTooLarge},
		{name: "frame over the default limit", typ: wire.FrameGoodbye, v: wire.GoodbyeMsg{Reason: strings.Repeat("x", wire.DefaultMaxFrame)}, err: wire.ErrFrameTooLarge},
		{name: "value JSON cannot encode", typ: wire.FramePing, v: make(chan int)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("kept")
			got, err := wire.AppendFrame(dst, tt.typ, tt.v, tt.max)
			if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("wire.AppendFrame() error = %v, want %v", err, tt.err)
			}
			if string(got) != "kept" {
				t.Fatalf("wire.AppendFrame() changed dst to %q", got)
			}
		})
	}
}

func TestAppendFrameAndFrameReaderAgreeOnTheLimit(t *testing.T) {
	const limit = 100
	overhead := len(`GOODBYE|{"reason":""}` + "\n")
	fits := wire.GoodbyeMsg{Reason: strings.Repeat("x", limit-overhead)}
	frame, err := wire.EncodeFrame(wire.FrameGoodbye, fits, limit)
	if err != nil || len(frame) != limit {
		t.Fatalf("wire.EncodeFrame() = %d bytes, %v; want exactly %d", len(frame), err, limit)
	}
	if _, _, err := wire.NewFrameReader(bytes.NewReader(frame), limit).Next(); err != nil {
		t.Fatalf("Next() = %v", err)
	}
	tooLong := wire.GoodbyeMsg{Reason: fits.Reason + "x"}
	if _, err := wire.EncodeFrame(wire.FrameGoodbye, tooLong, limit); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("wire.EncodeFrame() one byte over = %v, want wire.ErrFrameTooLarge", err)
	}
}

func TestAnyFrameReadsBackAsWritten(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		typ := rapid.StringMatching(`[A-Z_]{1,16}`).Draw(t, "typ")
		msgs := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) wire.GoodbyeMsg {
			return wire.GoodbyeMsg{Reason: rapid.String().Draw(t, "reason")}
		}), 1, 5).Draw(t, "msgs")
		var stream []byte
		for _, m := range msgs {
			var err error
			if stream, err = wire.AppendFrame(stream, typ, m, 0); err != nil {
				t.Fatalf("wire.AppendFrame() = %v", err)
			}
		}
		fr := wire.NewFrameReader(bytes.NewReader(stream), 0)
		for _, want := range msgs {
			gotTyp, payload, err := fr.Next()
			if err != nil || gotTyp != typ {
				t.Fatalf("Next() = %q, %v; want %q", gotTyp, err, typ)
			}
			var got wire.GoodbyeMsg
			if err := json.Unmarshal(payload, &got); err != nil {
				t.Fatalf("payload %q: %v", payload, err)
			}
			if got != want {
				t.Fatalf("read %+v, wrote %+v", got, want)
			}
		}
		if _, _, err := fr.Next(); err != io.EOF {
			t.Fatalf("Next() at the end = %v, want io.EOF", err)
		}
	})
}

func BenchmarkAppendFrameChat(b *testing.B) {
	c := wiretest.Chat(b, strings.Repeat("hello world ", 8))
	msg := wire.ChatFromEvent(c)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = wire.AppendFrame(buf[:0], wire.FrameChat, &msg, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkFrameReaderNext(b *testing.B) {
	frame, err := wire.EncodeFrame(wire.FrameChat, wire.ChatFromEvent(wiretest.Chat(b, strings.Repeat("hello world ", 8))), 0)
	if err != nil {
		b.Fatal(err)
	}
	stream := bytes.Repeat(frame, 1024)
	r := bytes.NewReader(stream)
	fr := wire.NewFrameReader(r, 0)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := fr.Next(); err == io.EOF {
			r.Reset(stream)
			fr = wire.NewFrameReader(r, 0)
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
