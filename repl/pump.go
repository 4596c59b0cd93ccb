package repl

import (
	"io"
	"sync"
	"time"
)

// pump reads from an input on behalf of a single consumer, in a goroutine
// of its own, so that the consumer can be released when it must stop even
// though a Read cannot be cancelled. It reads only when asked to: nothing
// is consumed ahead of need, and once the REPL stops no further input is
// taken from the reader.
type pump struct {
	in   io.Reader
	req  chan int
	res  chan readResult
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	stopped  bool // Close was called
	inFlight bool // the goroutine is inside in.Read
	err      error

	closeOnce sync.Once
}

type readResult struct {
	data []byte
	err  error
}

func newPump(in io.Reader) *pump {
	p := &pump{
		in:   in,
		req:  make(chan int),
		res:  make(chan readResult),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go p.loop()
	return p
}

func (p *pump) loop() {
	defer close(p.done)
	var buf []byte
	for {
		var n int
		select {
		case n = <-p.req:
		case <-p.stop:
			return
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.inFlight = true
		p.mu.Unlock()

		if cap(buf) < n {
			buf = make([]byte, n)
		}
		n, err := p.in.Read(buf[:n])

		p.mu.Lock()
		p.inFlight = false
		p.mu.Unlock()
		// The consumer copies data out before it asks again, so buf is
		// free to reuse on the next request.
		select {
		case p.res <- readResult{data: buf[:n], err: err}:
		case <-p.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read reads from the input. After Close, or once the input has failed,
// it returns at once: io.EOF, or the input's error.
func (p *pump) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := p.failed(); err != nil {
		return 0, err
	}
	select {
	case p.req <- len(b):
	case <-p.stop:
		return 0, io.EOF
	}
	select {
	case r := <-p.res:
		n := copy(b, r.data)
		if r.err != nil {
			p.mu.Lock()
			p.err = r.err
			p.mu.Unlock()
		}
		return n, r.err
	case <-p.stop:
		return 0, io.EOF
	}
}

func (p *pump) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// ended reports whether no more input will come: Close was called or the
// input failed.
func (p *pump) ended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped || p.err != nil
}

// Close releases the consumer and stops the goroutine. If a Read is in
// flight and the input supports read deadlines, the Read is interrupted,
// the goroutine is waited for, and the deadline is cleared again; a Read
// that cannot be interrupted keeps the goroutine until the input yields.
// Close is idempotent, and a second call waits for the first.
func (p *pump) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		inFlight := p.inFlight
		p.mu.Unlock()
		close(p.stop)
		if !inFlight {
			<-p.done
			return
		}
		d, ok := p.in.(interface{ SetReadDeadline(time.Time) error })
		if !ok || d.SetReadDeadline(time.Now()) != nil {
			return
		}
		<-p.done
		_ = d.SetReadDeadline(time.Time{})
	})
	return nil
}
