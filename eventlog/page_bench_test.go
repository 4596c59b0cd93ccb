package eventlog_test

import (
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// BenchmarkChatsBeforeDeep reads the page of 50 lines at the far end of a
// log of 100k chats, where a scroll-back reaches last, and reports its cost
// over the newest page's (LastChats(50) on the same log) measured before
// and after the loop: a page should cost the same at any depth.
func BenchmarkChatsBeforeDeep(b *testing.B) {
	const n, page = 100_000, 50
	l := openLog(b, chatFixture(b, n), store.Options{ReadOnly: true}, eventlog.Options{ReadOnly: true})
	newest := func() {
		if chats, err := l.LastChats(page); err != nil || len(chats) != page {
			b.Fatalf("LastChats(%d) = %d chats, %v", page, len(chats), err)
		}
	}
	// The oldest full page: the 50 chats before the 51st.
	first, err := l.ChatsBefore(0, n)
	if err != nil || len(first) != n {
		b.Fatalf("ChatsBefore(0, %d) = %d chats, %v", n, len(first), err)
	}
	before := first[page].Seq
	const baseCalls = 200
	var base time.Duration
	baseline := func() {
		start := time.Now()
		for range baseCalls {
			newest()
		}
		base += time.Since(start) / (2 * baseCalls)
	}
	baseline()
	for b.Loop() {
		if chats, err := l.ChatsBefore(before, page); err != nil || len(chats) != page {
			b.Fatalf("ChatsBefore(%d, %d) = %d chats, %v", before, page, len(chats), err)
		}
	}
	perOp := b.Elapsed() / time.Duration(b.N)
	baseline()
	b.ReportMetric(float64(perOp)/float64(base), "x_newest")
}
