//go:build !unix

package repl

// watchResize does nothing where there is no SIGWINCH; the width is
// measured when the line editor starts.
func watchResize(func()) (stop func()) { return func() {} }
