package repl

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Display shows lines to the user. It is safe for concurrent use: the node
// calls it from its own goroutines while the REPL reads input. Every line
// is written with a single Write (and flushed, if the writer buffers), so a
// script reading the output sees whole lines, one per event. While Run
// edits a line on a terminal, Display writes through the line editor, which
// redraws the prompt and the half-typed line below the new output.
//
// Display never writes control characters that it was handed: they are
// replaced (ESC shows as ^[), so a hostile name or text cannot drive the
// terminal.
type Display struct {
	mu sync.Mutex
	w  io.Writer
}

func newDisplay(w io.Writer) *Display { return &Display{w: w} }

// setWriter switches the destination, for the time a line editor owns the
// terminal.
func (d *Display) setWriter(w io.Writer) {
	d.mu.Lock()
	d.w = w
	d.mu.Unlock()
}

// ShowChat shows a public chat line: "15:04:05 <name> text", in local
// time, with the date when it is not today (Stamp).
func (d *Display) ShowChat(t time.Time, name, text string) {
	d.line(ChatLine(Stamp(t, time.Now()), name, text))
}

// ShowPrivate shows a private message: "15:04:05 [private] <name> text".
func (d *Display) ShowPrivate(t time.Time, name, text string) {
	d.line(PrivateLine(Stamp(t, time.Now()), name, text))
}

// ShowPrivateTo shows a private message this node sent:
// "15:04:05 [private to Carol] <name> text".
func (d *Display) ShowPrivateTo(t time.Time, to, name, text string) {
	d.line(PrivateToLine(Stamp(t, time.Now()), to, name, text))
}

// ShowHistory shows a line of history as it was shown when it happened.
func (d *Display) ShowHistory(l HistoryLine) {
	d.line(HistoryText(Stamp(l.Time, time.Now()), l))
}

// ShowSystem shows a system line: "*** text".
func (d *Display) ShowSystem(text string) {
	d.line("*** " + text)
}

// Printf shows formatted output, such as a command's result. Each line of
// the result is written on its own; a trailing newline is optional.
func (d *Display) Printf(format string, args ...any) {
	s := strings.TrimSuffix(fmt.Sprintf(format, args...), "\n")
	for _, l := range strings.Split(s, "\n") {
		d.line(l)
	}
}

// line writes one sanitized line with a single Write.
func (d *Display) line(s string) {
	b := append([]byte(Sanitize(s)), '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	// Write errors are ignored: there is nobody left to tell when the
	// output itself is gone.
	_, _ = d.w.Write(b)
	if f, ok := d.w.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

// Sanitize replaces everything that could drive a terminal or garble the
// line: C0 controls become caret notation (^[ for ESC, ^? for DEL), a tab
// becomes a space, C1 controls, bidirectional overrides and invalid UTF-8
// become U+FFFD.
// Every line that shows what peers sent passes through it: the REPL's
// Display and the reading commands alike.
func Sanitize(s string) string {
	if !strings.ContainsFunc(s, needsEscape) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20:
			b.WriteByte('^')
			b.WriteByte(byte(r) + 0x40)
		case r == 0x7f:
			b.WriteString("^?")
		case needsEscape(r):
			b.WriteRune(utf8.RuneError)
		default:
			// An invalid byte decodes as RuneError, which is written
			// as itself: a valid, harmless character.
			b.WriteRune(r)
		}
	}
	return b.String()
}

// needsEscape reports whether r must not reach the terminal as is: a
// control character, or one that changes how text reads without being
// seen (bidi controls, zero-width spaces; eventlog.InvisibleInText).
func needsEscape(r rune) bool {
	return r < 0x20 || r == 0x7f || eventlog.InvisibleInText(r)
}
