//go:build unix

package repl

import (
	"os"
	"os/signal"
	"syscall"
)

// watchResize calls f whenever the terminal's size changes, until stop is
// called; stop returns once the watcher has ended.
func watchResize(f func()) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-sig:
				f()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		close(quit)
		<-done
	}
}
