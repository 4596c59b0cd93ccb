package wire_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
)

// linesTestChain returns n chained lines of Key(seed) from seq first on,
// each of about size bytes of text; the first chains to a line before it
// unless first is 1.
func linesTestChain(tb testing.TB, seed byte, first uint64, n, size int) []eventlog.Chat {
	tb.Helper()
	out := make([]eventlog.Chat, n)
	prev := []byte(nil)
	if first > 1 {
		prev = bytes.Repeat([]byte{7}, eventlog.ChainHashSize)
	}
	for i := range out {
		text := fmt.Sprintf("line %d ", first+uint64(i))
		text += strings.Repeat("x", max(0, size-len(text)))
		c := eventlog.Chat{OriginSeq: first + uint64(i), OriginTime: time.Unix(1_700_000_000, int64(i)), Name: "Alice", Text: text, Prev: prev}
		c.Sign(wiretest.Key(seed))
		out[i] = c
		prev = eventlog.ChainHash(c)
	}
	return out
}

// linesTestPack packs chats and returns the frames and their line counts.
func linesTestPack(tb testing.TB, chats []eventlog.Chat, maxFrame int) (frames [][]byte, counts []int) {
	tb.Helper()
	p := wire.NewLinesPacker(maxFrame)
	for _, c := range chats {
		done, n, err := p.Add(c)
		if err != nil {
			tb.Fatal(err)
		}
		if done != nil {
			frames, counts = append(frames, done), append(counts, n)
		}
	}
	if done, n := p.Flush(); done != nil {
		frames, counts = append(frames, done), append(counts, n)
	}
	return frames, counts
}

// linesTestDecode reads LINES frames back into events.
func linesTestDecode(tb testing.TB, frames [][]byte, maxFrame int) []eventlog.Signed {
	tb.Helper()
	var out []eventlog.Signed
	for _, f := range frames {
		if len(f) > maxFrame {
			tb.Fatalf("a LINES frame of %d bytes, limit %d", len(f), maxFrame)
		}
		typ, payload, err := wire.NewFrameReader(bytes.NewReader(f), maxFrame).Next()
		if err != nil || typ != wire.FrameLines {
			tb.Fatalf("read %q, %v", typ, err)
		}
		events, err := wire.DecodeLines(payload)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range events {
			out = append(out, e)
		}
	}
	return out
}

// Decoding LINES gives exactly the events the CATCHUP frames of the same
// lines give, Prev filled in, in frames within the limit; and the frames
// are the canonical encoding of their LinesMsg.
func TestLinesDecodeToTheEventsOfTheirCatchupFrames(t *testing.T) {
	a := linesTestChain(t, 1, 1, 1, 100)
	a = append(a, linesTestChain(t, 1, 2, 600, 100)...)
	// Relink a's tail to its head, so the whole of a chains.
	for i := 1; i < len(a); i++ {
		a[i].Prev = eventlog.ChainHash(a[i-1])
		a[i].Sign(wiretest.Key(1))
	}
	gap := linesTestChain(t, 1, 700, 3, 100) // a hole before: Prev not elided
	b := linesTestChain(t, 2, 5, 40, 3000)   // long lines: cut by bytes
	for _, maxFrame := range []int{wire.DefaultMaxFrame, 16 << 10} {
		t.Run(fmt.Sprint(maxFrame), func(t *testing.T) {
			var chats []eventlog.Chat
			chats = append(chats, a[1:]...) // the unchained first goes as CATCHUP
			chats = append(chats, gap...)
			chats = append(chats, b...)
			frames, counts := linesTestPack(t, chats, maxFrame)
			got := linesTestDecode(t, frames, maxFrame)
			var want []eventlog.Signed
			for _, c := range chats {
				m := wire.ChatFromEvent(c)
				f, err := wire.EncodeFrame(wire.FrameCatchup, wire.CatchupMsg{Chat: &m}, maxFrame)
				if err != nil {
					t.Fatal(err)
				}
				_, payload, err := wire.NewFrameReader(bytes.NewReader(f), maxFrame).Next()
				if err != nil {
					t.Fatal(err)
				}
				e, err := wire.DecodeSigned(wire.FrameCatchup, payload)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, e)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("LINES decoded to %d events unlike the %d of CATCHUP", len(got), len(want))
			}
			for _, e := range got {
				if err := e.(eventlog.Chat).Verify(); err != nil {
					t.Fatalf("line %d does not verify after LINES: %v", e.(eventlog.Chat).OriginSeq, err)
				}
			}
			total := 0
			for i, f := range frames {
				if counts[i] > wire.MaxLinesPerFrame {
					t.Errorf("frame %d holds %d lines", i, counts[i])
				}
				total += counts[i]
				_, payload, _ := wire.NewFrameReader(bytes.NewReader(f), maxFrame).Next()
				var m wire.LinesMsg
				if err := wire.DecodeStrict(payload, &m); err != nil {
					t.Fatal(err)
				}
				again, err := wire.EncodeFrame(wire.FrameLines, m, maxFrame)
				if err != nil || !bytes.Equal(again, f) {
					t.Fatalf("frame %d is not the canonical encoding of its payload (%v)", i, err)
				}
			}
			if total != len(chats) {
				t.Errorf("frames count %d lines, sent %d", total, len(chats))
			}
			t.Logf("%d lines in %d frames of at most %d bytes", len(chats), len(frames), maxFrame)
		})
	}
}

// The bytes a 100-byte chained line costs as LINES and as CATCHUP.
func TestLinesCostAboutHalfTheBytesOfCatchup(t *testing.T) {
	chats := linesTestChain(t, 1, 2, 2000, 100)
	frames, _ := linesTestPack(t, chats, wire.DefaultMaxFrame)
	lines := 0
	for _, f := range frames {
		lines += len(f)
	}
	catchup := 0
	for _, c := range chats {
		m := wire.ChatFromEvent(c)
		f, err := wire.EncodeFrame(wire.FrameCatchup, wire.CatchupMsg{Chat: &m}, 0)
		if err != nil {
			t.Fatal(err)
		}
		catchup += len(f)
	}
	perLines, perCatchup := float64(lines)/float64(len(chats)), float64(catchup)/float64(len(chats))
	t.Logf("bytes per 100-byte chained line: LINES %.1f, CATCHUP %.1f (%.2f x), %d LINES frames", perLines, perCatchup, perCatchup/perLines, len(frames))
	if perLines > 0.7*perCatchup {
		t.Errorf("LINES costs %.1f bytes a line, CATCHUP %.1f: want at most 70%%", perLines, perCatchup)
	}
}

func TestLinesValidateRefusesWhatNoRunCanHold(t *testing.T) {
	good := func() wire.LinesMsg {
		chats := linesTestChain(t, 1, 2, 3, 20)
		return linesTestFirstFrame(t, chats)
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("a packed frame does not validate: %v", err)
	}
	tests := []struct {
		name  string
		alter func(*wire.LinesMsg)
		want  string
	}{
		{"no origin", func(m *wire.LinesMsg) { m.Origin = eventlog.NodeID{} }, "origin is missing"},
		{"no lines", func(m *wire.LinesMsg) { m.Lines = nil }, "0 lines"},
		{"too many lines", func(m *wire.LinesMsg) {
			for len(m.Lines) <= wire.MaxLinesPerFrame {
				l := m.Lines[len(m.Lines)-1]
				l.Seq++
				m.Lines = append(m.Lines, l)
			}
		}, fmt.Sprintf("want 1 to %d", wire.MaxLinesPerFrame)},
		{"seq repeated", func(m *wire.LinesMsg) { m.Lines[2].Seq = m.Lines[1].Seq }, "want seqs ascending"},
		{"seqs swapped", func(m *wire.LinesMsg) { m.Lines[0].Seq, m.Lines[1].Seq = m.Lines[1].Seq, m.Lines[0].Seq }, "want seqs ascending"},
		{"prev left out over a hole", func(m *wire.LinesMsg) { m.Lines[2].Seq += 5 }, "has no prev and does not follow"},
		{"seq 0", func(m *wire.LinesMsg) { m.Lines[0].Seq = 0 }, "origin seq 0"},
		{"prev on seq 1", func(m *wire.LinesMsg) { m.Lines[0].Seq = 1 }, "prev on origin seq 1"},
		{"short prev", func(m *wire.LinesMsg) { m.Lines[0].Prev = m.Lines[0].Prev[:5] }, "prev has 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.alter(&m)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// Names and texts are not Validate's: a line of a LINES frame has them
// checked with its signature, where a CATCHUP line's are, and fails there.
func TestALinesLineWithABadNameOrTextFailsWhereEveryLineIsChecked(t *testing.T) {
	for _, tt := range []struct {
		name  string
		alter func(*wire.LineMsg)
		want  string
	}{
		{"empty name", func(l *wire.LineMsg) { l.Name = "" }, "name is empty"},
		{"long text", func(l *wire.LineMsg) { l.Text = strings.Repeat("x", eventlog.MaxTextLen+1) }, "text is"},
		{"control in text", func(l *wire.LineMsg) { l.Text = "a\x1bb" }, "control"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			chats := linesTestChain(t, 1, 2, 3, 20)
			m := linesTestFirstFrame(t, chats)
			tt.alter(&m.Lines[1])
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate() = %v: names and texts are checked with the signature", err)
			}
			err := eventlog.VerifySigned(m.Events()[1])
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifySigned() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// A line altered inside a LINES frame fails its own signature, and so does
// every line after it whose Prev was left out: each is filled in from a
// line that is not what the origin signed. The lines before it hold.
// (As CATCHUP, the lines after would hold alone; a sender that alters a
// line loses the rest of its frame, and is dropped either way.)
func TestAnAlteredLineInLinesBreaksItsChain(t *testing.T) {
	chats := linesTestChain(t, 1, 2, 4, 30)
	m := linesTestFirstFrame(t, chats)
	m.Lines[1].Text = "altered"
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, e := range m.Events() {
		err := e.Verify()
		if bad := i >= 1; (err != nil) != bad {
			t.Errorf("line %d: Verify() = %v", i, err)
		}
	}
}

// linesTestFirstFrame packs chats and decodes the first LINES frame.
func linesTestFirstFrame(t *testing.T, chats []eventlog.Chat) wire.LinesMsg {
	t.Helper()
	frames, _ := linesTestPack(t, chats, 0)
	_, payload, err := wire.NewFrameReader(bytes.NewReader(frames[0]), 0).Next()
	if err != nil {
		t.Fatal(err)
	}
	var m wire.LinesMsg
	if err := wire.DecodeStrict(payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
