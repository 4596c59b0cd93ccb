// Package workload is what the benchmarks feed the product and what they
// measure it against: realistic chat lines, and the raw rate of small
// durable writes on the disk under test, measured in the same run so that
// figures are ratios to a baseline rather than absolute numbers from a
// shared, noisy machine.
package workload

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
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

// origins are the authors of the benchmark stream: fixed keys, so that a
// log built twice holds the same lines.
var origins = func() []struct {
	name string
	key  ed25519.PrivateKey
} {
	names := []string{"Alice", "Bob", "Chidi", "Dmitri"}
	out := make([]struct {
		name string
		key  ed25519.PrivateKey
	}, len(names))
	for i, name := range names {
		seed := sha256.Sum256([]byte("workload " + name))
		out[i].name, out[i].key = name, ed25519.NewKeyFromSeed(seed[:])
	}
	return out
}()

// epoch is when the benchmark stream's first line was written.
var epoch = time.Date(2026, 2, 1, 9, 30, 0, 0, time.UTC)

// Chat is line i of the benchmark stream, signed: four authors take
// turns, each numbering its own lines from 1, a second apart.
func Chat(i int) eventlog.Chat {
	o := origins[i%len(origins)]
	c := eventlog.Chat{
		OriginSeq:  uint64(i/len(origins) + 1),
		OriginTime: epoch.Add(time.Duration(i) * time.Second),
		Name:       o.name,
		Text:       Text(i),
	}
	c.Sign(o.key)
	return c
}

// Chats signs lines from..from+n-1 on every core: signing is most of the
// cost of building a large log.
func Chats(from, n int) []eventlog.Body {
	out := make([]eventlog.Body, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out[i] = Chat(from + i)
			}
		}()
	}
	wg.Wait()
	return out
}

// batch is how many lines one Append carries while a log is built.
const batch = 4096

// BuildLog appends n lines of the stream (four other authors) to the log
// in dir, creating the node, named name, if needed.
func BuildLog(dir, name string, n int) error {
	return build(dir, name, n, Chats)
}

// BuildOwnLog appends n lines said by the node in dir itself, named name:
// the log numbers and signs them, as it does what a person types.
func BuildOwnLog(dir, name string, n int) error {
	return build(dir, name, n, func(from, count int) []eventlog.Body {
		out := make([]eventlog.Body, count)
		for i := range out {
			out[i] = eventlog.Chat{Name: name, Text: Text(from + i)}
		}
		return out
	})
}

// build appends n lines from lines, a batch per Append.
func build(dir, name string, n int, lines func(from, count int) []eventlog.Body) error {
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetName(name); err != nil {
		return err
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	for from := 0; from < n; from += batch {
		if _, err := l.Append(context.Background(), lines(from, min(batch, n-from))...); err != nil {
			return err
		}
	}
	return nil
}
