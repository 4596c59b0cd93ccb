package eventlog_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
)

// aheadBatch is n own lines as the outbox hands them in, unnumbered.
func aheadBatch(tag string, n int) []eventlog.Body {
	out := make([]eventlog.Body, n)
	for i := range out {
		out[i] = eventlog.Chat{Name: "Me", Text: fmt.Sprintf("%s %d", tag, i+1)}
	}
	return out
}

// aheadSign signs n own lines ahead (Log.Sign).
func aheadSign(t *testing.T, l *eventlog.Log, tag string, n int) []eventlog.Body {
	t.Helper()
	signed, err := l.Sign(aheadBatch(tag, n))
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// aheadStored appends signed with AppendSigned and returns the messages
// as stored, failing on anything not stored.
func aheadStored(t *testing.T, l *eventlog.Log, signed []eventlog.Body) []eventlog.Signed {
	t.Helper()
	res, err := l.AppendSigned(context.Background(), signed)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]eventlog.Signed, len(res))
	for i, r := range res {
		if r.Seq == 0 {
			t.Fatalf("message %d not stored: %+v", i, r)
		}
		out[i] = r.Body.(eventlog.Signed)
	}
	return out
}

// aheadChain checks that the node's own messages the log holds are
// numbered 1 to want with no hole, each chained to the one before, and
// that the log verifies.
func aheadChain(t *testing.T, l *eventlog.Log, want int) {
	t.Helper()
	evs, err := l.ByOrigin(l.Self(), 0, want+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != want {
		t.Fatalf("the log holds %d own messages, want %d", len(evs), want)
	}
	for i, e := range evs {
		s := e.Body.(eventlog.Signed)
		if _, seq := s.OriginKey(); seq != uint64(i+1) {
			t.Fatalf("own message %d has origin seq %d", i+1, seq)
		}
		if i > 0 {
			if c, ok := s.(eventlog.Chat); ok && !bytes.Equal(c.Prev, eventlog.ChainHash(evs[i-1].Body.(eventlog.Signed))) {
				t.Errorf("own message %d does not chain to the one before", i+1)
			}
		}
	}
	assertClean(t, l)
}

// Batches signed ahead of the writer, two at a time as the outbox
// pipelines them, are stored exactly as signed, numbered and chained
// from the log's newest own message.
func TestLinesSignedAheadAreStoredAsSigned(t *testing.T) {
	l := newLog(t)
	if _, err := l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "before"}); err != nil {
		t.Fatal(err)
	}
	first := aheadSign(t, l, "first", 3)
	second := aheadSign(t, l, "second", 2)
	for _, signed := range [][]eventlog.Body{first, second} {
		for i, s := range aheadStored(t, l, signed) {
			if !bytes.Equal(eventlog.ChainHash(s), eventlog.ChainHash(signed[i].(eventlog.Signed))) {
				t.Errorf("%v was signed again", s)
			}
		}
	}
	aheadChain(t, l, 6)
}

// When the node's newest own message moves under the signer (another
// own message written in between, as a catch-up of a restored backup's
// own lines does, or a batch signed and never stored), what no longer
// follows is numbered and signed again in the transaction: no number
// twice, no hole, no broken chain, and the signer finds its way back.
func TestLinesSignedAheadOfAMovedChainAreSignedAgain(t *testing.T) {
	ctx := context.Background()
	t.Run("written in between", func(t *testing.T) {
		l := newLog(t)
		first := aheadSign(t, l, "first", 3)
		second := aheadSign(t, l, "second", 3)
		if _, err := l.Append(ctx, eventlog.Chat{Name: "Me", Text: "in between"}); err != nil {
			t.Fatal(err)
		}
		stored := aheadStored(t, l, first)
		if _, seq := stored[0].OriginKey(); seq != 2 {
			t.Errorf("the first line signed ahead is stored as origin seq %d, want 2", seq)
		}
		aheadStored(t, l, second)
		aheadChain(t, l, 7)
		// Signed again from the log: the next batch fits as signed.
		third := aheadSign(t, l, "third", 2)
		for i, s := range aheadStored(t, l, third) {
			if !bytes.Equal(eventlog.ChainHash(s), eventlog.ChainHash(third[i].(eventlog.Signed))) {
				t.Errorf("line %d of the batch after was signed again", i+1)
			}
		}
		aheadChain(t, l, 9)
	})
	t.Run("signed and never stored", func(t *testing.T) {
		l := newLog(t)
		aheadSign(t, l, "lost", 4)
		next := aheadSign(t, l, "next", 2)
		aheadStored(t, l, next)
		aheadChain(t, l, 2)
	})
}
