package eventlog_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
)

func TestChatsBeforePagesBackThroughTheWholeLog(t *testing.T) {
	l := newLog(t)
	alice := originKey("alice")
	var chatSeqs []uint64
	// Three events per line spread the chats over several index blocks.
	for i := range 100 {
		res := appendOK(t, l,
			eventlog.Connect{ID: idOf(alice), Addr: "10.0.0.1:8080"},
			signedChat(alice, "Alice", uint64(i+1), fmt.Sprintf("line %d", i+1)),
			eventlog.Disconnect{ID: idOf(alice)},
		)
		chatSeqs = append(chatSeqs, res[1].Seq)
	}
	for _, size := range []int{1, 7, 64, 100, 500} {
		var got []uint64
		before := uint64(0)
		for pages := 0; ; pages++ {
			if pages > len(chatSeqs) {
				t.Fatalf("page size %d: paging does not end", size)
			}
			page, err := l.ChatsBefore(before, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > size {
				t.Fatalf("page size %d: got %d events", size, len(page))
			}
			for _, e := range page {
				if e.Body.Type() != eventlog.TypeChat || (before != 0 && e.Seq >= before) {
					t.Fatalf("page before %d: got %v at seq %d", before, e.Body.Type(), e.Seq)
				}
			}
			got = append(seqs(page), got...)
			before = page[0].Seq
		}
		if !reflect.DeepEqual(got, chatSeqs) {
			t.Errorf("page size %d: paged seqs %v, want %v", size, got, chatSeqs)
		}
	}
}

func TestChatsBeforeASeqBetweenChatsStartsBelowIt(t *testing.T) {
	l := newLog(t)
	alice := originKey("alice")
	var chatSeqs []uint64
	for i := range 10 {
		res := appendOK(t, l,
			signedChat(alice, "Alice", uint64(i+1), "x"),
			eventlog.Disconnect{ID: idOf(alice)},
		)
		chatSeqs = append(chatSeqs, res[0].Seq)
	}
	last, _ := l.LastSeq()
	for _, c := range []struct {
		before uint64
		n      int
		want   []uint64
	}{
		{chatSeqs[5] + 1, 2, chatSeqs[4:6]},
		{chatSeqs[5], 2, chatSeqs[3:5]},
		{last + 1000, 3, chatSeqs[7:]},
		{1, 5, nil},
		{chatSeqs[0], 5, nil},
		{0, 0, nil},
	} {
		got, err := l.ChatsBefore(c.before, c.n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(got), c.want) {
			t.Errorf("ChatsBefore(%d, %d) = %v, want %v", c.before, c.n, seqs(got), c.want)
		}
	}
}
