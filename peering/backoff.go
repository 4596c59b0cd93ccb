package peering

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is the redial schedule of one peer: Base after the first failure,
// doubling with each further one up to Max, spread by ±Jitter so that peers
// that fell together do not all come back in the same instant.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64 // fraction of the delay, 0 to 1
}

// DefaultBackoff returns the schedule of the design: 1 s doubling, capped at
// 5 min, ±20 %.
func DefaultBackoff() Backoff {
	return Backoff{Base: time.Second, Max: 5 * time.Minute, Jitter: 0.2}
}

// Delay returns how long to wait before the next dial after failures
// consecutive failures; 0 failures means dial now. rnd yields numbers in
// [0, 1) and is passed in so that tests can fix it; nil means math/rand/v2.
// Max <= 0 means no cap.
func (b Backoff) Delay(failures int, rnd func() float64) time.Duration {
	if failures <= 0 || b.Base <= 0 {
		return 0
	}
	limit := b.Max
	if limit <= 0 {
		limit = math.MaxInt64
	}
	d := limit
	// Doubling by shifting would overflow long before a count of 63, so
	// compare before shifting.
	if shift := failures - 1; shift < 63 && b.Base <= limit>>shift {
		d = b.Base << shift
	}
	if !(b.Jitter > 0) { // also catches NaN
		return d
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if !(r >= 0) {
		r = 0
	} else if r > 1 {
		r = 1
	}
	f := float64(d) * (1 + min(b.Jitter, 1)*(2*r-1))
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(max(f, 0))
}
