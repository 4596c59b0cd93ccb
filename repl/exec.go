package repl

import (
	"context"
	"io"
)

// NewDisplay returns a Display that writes to w, for a front end other
// than the terminal that shows command results in the REPL's own words.
func NewDisplay(w io.Writer) *Display { return newDisplay(w) }

// Exec runs one input line against node exactly as the REPL would, with
// the same parser and the same commands, and shows the results on d. It
// reports whether the line asked to quit, which it leaves to the caller.
// Another front end (the web page) uses it, so that a command means the
// same wherever it is typed.
func Exec(ctx context.Context, node Node, d *Display, line string) (quit bool) {
	r := &REPL{display: d}
	return r.execute(ctx, node, line)
}
