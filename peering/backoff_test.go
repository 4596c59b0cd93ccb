package peering

import (
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// backoffTestNoJitter is the middle of the jitter range, where the factor is
// exactly 1.
func backoffTestNoJitter() float64 { return 0.5 }

// backoffTestAlmostOne is the largest value a generator of [0, 1) returns.
func backoffTestAlmostOne() float64 { return math.Nextafter(1, 0) }

func TestBackoffDoublesFromBaseUpToMax(t *testing.T) {
	b := DefaultBackoff()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{failures: math.MinInt, want: 0},
		{failures: -1, want: 0},
		{failures: 0, want: 0},
		{failures: 1, want: time.Second},
		{failures: 2, want: 2 * time.Second},
		{failures: 3, want: 4 * time.Second},
		{failures: 4, want: 8 * time.Second},
		{failures: 8, want: 128 * time.Second},
		{failures: 9, want: 256 * time.Second},
		{failures: 10, want: 5 * time.Minute},
		{failures: 63, want: 5 * time.Minute},
		{failures: 64, want: 5 * time.Minute},
		{failures: 1000, want: 5 * time.Minute},
		{failures: math.MaxInt, want: 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.failures, backoffTestNoJitter); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestBackoffJitterStaysWithinTwentyPercent(t *testing.T) {
	b := DefaultBackoff()
	for _, failures := range []int{1, 2, 5, 9, 10, 1000} {
		nominal := b.Delay(failures, backoffTestNoJitter)
		low := b.Delay(failures, func() float64 { return 0 })
		high := b.Delay(failures, backoffTestAlmostOne)
		if low != nominal*8/10 {
			t.Errorf("Delay(%d) with rnd 0 = %v, want %v", failures, low, nominal*8/10)
		}
		if high > nominal*12/10 || high < nominal*119/100 {
			t.Errorf("Delay(%d) with rnd ~1 = %v, want just under %v", failures, high, nominal*12/10)
		}
		for range 100 {
			if d := b.Delay(failures, nil); d < low || d > nominal*12/10 {
				t.Fatalf("Delay(%d) with the default source = %v, outside [%v, %v]", failures, d, low, nominal*12/10)
			}
		}
	}
}

func TestBackoffSurvivesOddSettings(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		rnd  func() float64
		want time.Duration
	}{
		{name: "zero value dials at once", b: Backoff{}, want: 0},
		{name: "no cap grows to the largest duration", b: Backoff{Base: time.Second}, want: math.MaxInt64},
		{name: "no cap with jitter does not overflow", b: Backoff{Base: time.Second, Jitter: 0.2}, rnd: backoffTestAlmostOne, want: math.MaxInt64},
		{name: "base above max is capped", b: Backoff{Base: time.Hour, Max: time.Minute}, want: time.Minute},
		{name: "jitter above 1 cannot go negative", b: Backoff{Base: time.Second, Max: time.Second, Jitter: 3}, rnd: func() float64 { return 0 }, want: 0},
		{name: "NaN jitter is no jitter", b: Backoff{Base: time.Second, Max: time.Second, Jitter: math.NaN()}, want: time.Second},
		{name: "NaN from rnd is its lowest value", b: Backoff{Base: time.Second, Max: time.Second, Jitter: 0.5}, rnd: math.NaN, want: time.Second / 2},
		{name: "rnd above 1 is clamped", b: Backoff{Base: time.Second, Max: time.Second, Jitter: 0.5}, rnd: func() float64 { return 7 }, want: 3 * time.Second / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Delay(math.MaxInt, tt.rnd); got != tt.want {
				t.Fatalf("Delay() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoffNeverShrinksAsFailuresGrow(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := Backoff{
			Base: time.Duration(rapid.Int64Range(1, int64(time.Hour)).Draw(t, "base")),
			Max:  time.Duration(rapid.Int64Range(1, math.MaxInt64).Draw(t, "max")),
		}
		n := rapid.IntRange(1, 200).Draw(t, "failures")
		prev, next := b.Delay(n, nil), b.Delay(n+1, nil)
		if next < prev || next > b.Max || prev < min(b.Base, b.Max) {
			t.Fatalf("%+v: Delay(%d) = %v, Delay(%d) = %v", b, n, prev, n+1, next)
		}
	})
}
