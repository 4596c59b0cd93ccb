package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/internal/e2e"
	"github.com/p2pchat/p2pchat/internal/workload"
)

// BenchmarkStartup1M starts the real binary, headless, on a data directory
// holding a million chat lines, and measures the time until it prints its
// "listening on" line and its resident memory at that moment (VmRSS from
// /proc). The baseline is the same on a directory of a thousand lines,
// started in turns with the large one, so that a change of load on a
// shared machine hits both alike. Both logs are in the page cache (they
// were just written): this is a warm start.
func BenchmarkStartup1M(b *testing.B) {
	// The fixtures are built once, in the parent's directory, which
	// outlives every round of the sub-benchmark.
	small := filepath.Join(b.TempDir(), "1k")
	large := filepath.Join(b.TempDir(), "1M")
	for dir, n := range map[string]int{small: 1_000, large: 1_000_000} {
		start := time.Now()
		startupFixture(b, dir, n)
		b.Logf("built a log of %d lines in %v", n, time.Since(start).Round(time.Millisecond))
	}
	b.Run("events=1M", func(b *testing.B) {
		var took, baseTook []time.Duration
		var rss, baseRSS []float64
		for range b.N {
			b.StopTimer()
			d, r := startOnce(b, small)
			baseTook, baseRSS = append(baseTook, d), append(baseRSS, r)
			b.StartTimer()
			d, r = startOnce(b, large)
			took, rss = append(took, d), append(rss, r)
		}
		b.StopTimer()
		b.ReportMetric(float64(median(took))/float64(time.Millisecond), "start_ms")
		b.ReportMetric(float64(median(took))/float64(median(baseTook)), "x_start1k")
		b.ReportMetric(median(rss), "rss_MiB")
		b.ReportMetric(median(baseRSS), "rss1k_MiB")
		b.ReportMetric(median(rss)/median(baseRSS), "x_rss1k")
	})
}

// startOnce starts the node of dir headless, waits for its "listening on"
// line, reads its resident memory, and stops it with SIGTERM as a service
// manager would. It returns the time to the line and the memory in MiB.
func startOnce(b *testing.B, dir string) (time.Duration, float64) {
	b.Helper()
	cmd := exec.Command(string(p2pchat), "--data-dir", dir, "--headless", "--log-level", "warn")
	cmd.Env = e2e.Env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// A node that never listens is killed; its stdout then ends.
	hung := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer hung.Stop()
	var took time.Duration
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if strings.Contains(lines.Text(), " listening on ") {
			took = time.Since(start)
			break
		}
	}
	rss, rssErr := vmRSS(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	switch {
	case took == 0:
		b.Fatalf("p2pchat --data-dir %s never printed its listening line (%v)", dir, waitErr)
	case rssErr != nil:
		b.Fatal(rssErr)
	case waitErr != nil:
		b.Fatalf("p2pchat --data-dir %s after SIGTERM: %v", dir, waitErr)
	}
	return took, rss
}

// vmRSS reads a process's resident set size, in MiB.
func vmRSS(pid int) (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %v", rest, err)
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func median[T time.Duration | float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// startupFixture makes dir the data directory of a node named Alice that
// holds n chat lines of 100 bytes from four authors, as the storage
// benchmarks' logs do. The lines are signed on every core and appended
// 4,096 at a time.
func startupFixture(b *testing.B, dir string, n int) {
	b.Helper()
	if err := workload.BuildLog(dir, "Alice", n); err != nil {
		b.Fatal(err)
	}
}
