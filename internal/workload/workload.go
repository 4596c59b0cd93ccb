// Package workload is what the benchmarks feed the product and what they
// measure it against: realistic chat lines, and the raw rate of small
// durable writes on the disk under test, measured in the same run so that
// figures are ratios to a baseline rather than absolute numbers from a
// shared, noisy machine.
package workload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var words = []string{"the", "build", "is", "green", "again", "after", "lunch", "can", "you", "review",
	"my", "patch", "for", "the", "relay", "queue", "tomorrow", "morning", "thanks", "a", "lot"}

// Text returns line i of a benchmark: 100 bytes of ordinary chat text,
// different for every i.
func Text(i int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "#%d ", i)
	for j := i; sb.Len() < 100; j++ {
		sb.WriteString(words[j%len(words)])
		sb.WriteByte(' ')
	}
	return sb.String()[:100]
}

// Fsyncs writes 100 bytes and fsyncs a file in dir, n times, and returns
// how long each pair took: the disk's floor under any durable append.
func Fsyncs(dir string, n int) ([]time.Duration, error) {
	f, err := os.Create(filepath.Join(dir, "fsync-baseline"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 100)
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		out[i] = time.Since(start)
	}
	return out, nil
}

// Rate is how many of ds fit in a second, back to back.
func Rate(ds []time.Duration) float64 {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	if sum <= 0 {
		return 0
	}
	return float64(len(ds)) / sum.Seconds()
}
