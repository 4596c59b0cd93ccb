package eventlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/workload"
	"github.com/p2pchat/p2pchat/store"
)

var fixtures struct {
	mu   sync.Mutex
	root string
	dirs map[int]string
}

// chatFixture returns a data directory holding a log of n chats, built
// once per process and shared by the benchmarks that read it.
func chatFixture(b *testing.B, n int) string {
	b.Helper()
	fixtures.mu.Lock()
	defer fixtures.mu.Unlock()
	if dir, ok := fixtures.dirs[n]; ok {
		return dir
	}
	if fixtures.root == "" {
		root, err := os.MkdirTemp("", "p2pchat-bench-")
		if err != nil {
			b.Fatal(err)
		}
		fixtures.root, fixtures.dirs = root, map[int]string{}
	}
	dir := filepath.Join(fixtures.root, fmt.Sprint(n))
	start := time.Now()
	if err := workload.BuildLog(dir, "Bench", n); err != nil {
		b.Fatalf("build fixture of %d chats: %v", n, err)
	}
	b.Logf("built a log of %d chats in %v", n, time.Since(start).Round(time.Millisecond))
	fixtures.dirs[n] = dir
	return dir
}

func removeFixtures() {
	if fixtures.root != "" {
		os.RemoveAll(fixtures.root)
	}
}

// fsyncRate measures the disk's rate of small write+fsync pairs in a file
// beside the benchmark's data: the baseline that a durable append is
// compared with. The benchmarks measure it before and after their loop
// and take the mean, so that a change of load on a shared disk during
// the run skews the ratio less.
func fsyncRate(b *testing.B, n int) float64 {
	b.Helper()
	ds, err := workload.Fsyncs(b.TempDir(), n)
	if err != nil {
		b.Fatal(err)
	}
	return workload.Rate(ds)
}

func perSecond(b *testing.B, n int) float64 { return float64(n) / b.Elapsed().Seconds() }

func BenchmarkFsyncBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 100)
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perSecond(b, b.N), "fsyncs/s")
}

func BenchmarkAppendOne(b *testing.B) {
	before := fsyncRate(b, 200)
	l := openLog(b, filepath.Join(b.TempDir(), "node"), store.Options{}, eventlog.Options{})
	ctx := context.Background()
	var i int
	for b.Loop() {
		// The node's own line: numbered and signed by the log.
		if _, err := l.Append(ctx, eventlog.Chat{Name: "Alice", Text: workload.Text(i)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	rate := perSecond(b, b.N)
	base := (before + fsyncRate(b, 200)) / 2
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(base, "fsyncs/s")
	b.ReportMetric(rate/base, "x_fsync")
}

func BenchmarkAppendConcurrent(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			before := fsyncRate(b, 200)
			l := openLog(b, filepath.Join(b.TempDir(), "node"), store.Options{}, eventlog.Options{})
			chats := workload.Chats(0, b.N) // lines received from peers, already signed
			ctx := context.Background()
			var (
				next atomic.Int64
				wg   sync.WaitGroup
			)
			b.ResetTimer()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= len(chats) {
							return
						}
						if _, err := l.Append(ctx, chats[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			rate := perSecond(b, b.N)
			base := (before + fsyncRate(b, 200)) / 2
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(base, "fsyncs/s")
			b.ReportMetric(rate/base, "x_fsync")
		})
	}
}

// fileBytesPerEvent is the size of the database file over its events.
func fileBytesPerEvent(b *testing.B, dir string, events int) float64 {
	fi, err := os.Stat(filepath.Join(dir, store.FileName))
	if err != nil {
		b.Fatal(err)
	}
	return float64(fi.Size()) / float64(events)
}

func BenchmarkLastChats100(b *testing.B) {
	small, large := chatFixture(b, 1_000), chatFixture(b, 1_000_000)
	lastChats := func(l *eventlog.Log) {
		chats, err := l.LastChats(100)
		if err != nil || len(chats) != 100 {
			b.Fatalf("LastChats(100) = %d chats, %v", len(chats), err)
		}
	}
	// Baseline: the same call on a log of a thousand chats, before and
	// after the loop.
	ls := openLog(b, small, store.Options{ReadOnly: true}, eventlog.Options{ReadOnly: true})
	const baseCalls = 200
	var base time.Duration
	baseline := func() {
		start := time.Now()
		for range baseCalls {
			lastChats(ls)
		}
		base += time.Since(start) / (2 * baseCalls)
	}

	l := openLog(b, large, store.Options{ReadOnly: true}, eventlog.Options{ReadOnly: true})
	baseline()
	for b.Loop() {
		lastChats(l)
	}
	perOp := b.Elapsed() / time.Duration(b.N)
	baseline()
	b.ReportMetric(float64(perOp)/float64(base), "x_1k")
	b.ReportMetric(fileBytesPerEvent(b, large, 1_000_000), "B/event")
}

// openOnce is a node's start as far as storage goes: open the data
// directory and the log, read the history shown on start, close.
func openOnce(b *testing.B, dir string) {
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if chats, err := l.LastChats(20); err != nil || len(chats) != 20 {
		b.Fatalf("LastChats(20) = %d chats, %v", len(chats), err)
	}
	l.Close()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkOpen(b *testing.B) {
	b.Run("events=1k", func(b *testing.B) {
		dir := chatFixture(b, 1_000)
		for b.Loop() {
			openOnce(b, dir)
		}
	})
	b.Run("events=1M", func(b *testing.B) {
		small, large := chatFixture(b, 1_000), chatFixture(b, 1_000_000)
		// Baseline: opening the log of a thousand chats, before and
		// after the loop.
		const baseOpens = 50
		var base time.Duration
		baseline := func() {
			start := time.Now()
			for range baseOpens {
				openOnce(b, small)
			}
			base += time.Since(start) / (2 * baseOpens)
		}
		baseline()
		for b.Loop() {
			openOnce(b, large)
		}
		perOp := b.Elapsed() / time.Duration(b.N)
		baseline()
		b.ReportMetric(float64(perOp)/float64(base), "x_open1k")
		b.ReportMetric(fileBytesPerEvent(b, large, 1_000_000), "B/event")
	})
}

// BenchmarkVerify measures verify of a running log, which copies the file
// into a snapshot first, against the baseline of verifying the same file
// in place through a read-only open (no writer, so no snapshot needed).
func BenchmarkVerify(b *testing.B) {
	dir := chatFixture(b, 100_000)
	verifyOnce := func(readOnly bool) time.Duration {
		st, err := store.Open(dir, store.Options{ReadOnly: readOnly})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		l, err := eventlog.Open(st, eventlog.Options{ReadOnly: readOnly, KeepNetworkEvents: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		start := time.Now()
		rep, err := l.Verify(context.Background())
		if err != nil || len(rep.Problems) > 0 {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
		return time.Since(start)
	}
	var base, snap time.Duration
	for b.Loop() {
		base += verifyOnce(true)
		snap += verifyOnce(false)
	}
	b.ReportMetric(float64(snap)/float64(b.N)/1e6, "ms_snapshot")
	b.ReportMetric(float64(base)/float64(b.N)/1e6, "ms_inplace")
	b.ReportMetric(float64(snap)/float64(base), "x_inplace")
}
