package eventlog_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

func appendOK(t testing.TB, l *eventlog.Log, bodies ...eventlog.Body) []eventlog.Result {
	t.Helper()
	res, err := l.Append(context.Background(), bodies...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(bodies) {
		t.Fatalf("Append returned %d results for %d bodies", len(res), len(bodies))
	}
	return res
}

func scanAll(t testing.TB, l *eventlog.Log, from uint64) []eventlog.Event {
	t.Helper()
	var out []eventlog.Event
	if err := l.Scan(context.Background(), from, func(e eventlog.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func seqs(events []eventlog.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestAppendNumbersEventsFromOneWithoutGaps(t *testing.T) {
	l := newLog(t)
	bodies := everyBody()
	var got []uint64
	for _, batch := range [][]eventlog.Body{bodies[:1], bodies[1:4], bodies[4:]} {
		for _, r := range appendOK(t, l, batch...) {
			got = append(got, r.Seq)
		}
	}
	if want := seqRange(1, uint64(len(bodies))); !reflect.DeepEqual(got, want) {
		t.Errorf("Append gave seqs %v, want %v", got, want)
	}
	if last, err := l.LastSeq(); err != nil || last != uint64(len(bodies)) {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, len(bodies))
	}
}

func TestScanReadsBackWhatWasAppendedInOrder(t *testing.T) {
	l := newLog(t)
	bodies := everyBody()
	appendOK(t, l, bodies...)
	events := scanAll(t, l, 1)
	if len(events) != len(bodies) {
		t.Fatalf("Scan returned %d events, want %d", len(events), len(bodies))
	}
	for i, e := range events {
		if e.Seq != uint64(i+1) || !reflect.DeepEqual(e.Body, bodies[i]) {
			t.Errorf("event %d = seq %d %#v; want seq %d %#v", i, e.Seq, e.Body, i+1, bodies[i])
		}
		if e.Time.IsZero() {
			t.Errorf("event %d has no time", e.Seq)
		}
	}
}

func TestScanStartsAtTheGivenSequenceAcrossChunks(t *testing.T) {
	l := openLog(t, t.TempDir(), store.Options{NoSync: true}, eventlog.Options{})
	const n = 2500 // more than two of Scan's read chunks
	bodies := make([]eventlog.Body, n)
	for i := range bodies {
		bodies[i] = eventlog.DialFailed{ID: peerID("carol"), Addr: fmt.Sprintf("10.0.0.3:%d", i)}
	}
	appendOK(t, l, bodies...)
	for _, from := range []uint64{0, 1, 2, 1024, 1025, 2048, 2500, 2501, 1 << 40} {
		want := seqRange(max(from, 1), n)
		if got := seqs(scanAll(t, l, from)); !reflect.DeepEqual(got, want) {
			t.Errorf("Scan from %d returned %d events (%v...), want %d", from, len(got), got[:min(len(got), 3)], len(want))
		}
	}
}

func TestScanStopsAtTheFirstErrorOfItsCallback(t *testing.T) {
	l := newLog(t)
	appendOK(t, l, everyBody()...)
	stop := errors.New("enough")
	var calls int
	err := l.Scan(context.Background(), 1, func(eventlog.Event) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("Scan = %v after %d calls; want %v after 3", err, calls, stop)
	}
}

func TestScanStopsWhenItsContextEnds(t *testing.T) {
	l := newLog(t)
	appendOK(t, l, everyBody()...)
	ctx, cancel := context.WithCancel(context.Background())
	var calls int
	err := l.Scan(ctx, 1, func(eventlog.Event) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("Scan = %v after %d calls; want context.Canceled after 1", err, calls)
	}
}

func TestLastChatsReturnsTheNewestChatsOldestFirst(t *testing.T) {
	l := newLog(t)
	alice := originKey("alice")
	var chatSeqs []uint64
	for i := range 5 {
		res := appendOK(t, l,
			eventlog.Connect{ID: idOf(alice), Addr: "10.0.0.1:8080"},
			signedChat(alice, "Alice", uint64(i+1), fmt.Sprintf("line %d", i+1)),
			eventlog.Disconnect{ID: idOf(alice)},
		)
		chatSeqs = append(chatSeqs, res[1].Seq)
	}
	for _, c := range []struct {
		n    int
		want []uint64
	}{
		{-1, nil},
		{0, nil},
		{1, chatSeqs[4:]},
		{3, chatSeqs[2:]},
		{5, chatSeqs},
		{20, chatSeqs},
	} {
		got, err := l.LastChats(c.n)
		if err != nil {
			t.Fatal(err)
		}
		if gotSeqs := seqs(got); len(got) != len(c.want) || (len(got) > 0 && !reflect.DeepEqual(gotSeqs, c.want)) {
			t.Errorf("LastChats(%d) = %v, want %v", c.n, gotSeqs, c.want)
		}
		for _, e := range got {
			if e.Body.Type() != eventlog.TypeChat {
				t.Errorf("LastChats(%d) returned a %v", c.n, e.Body.Type())
			}
		}
	}
}

func TestAChatAlreadyInTheLogIsADuplicate(t *testing.T) {
	l := newLog(t)
	chat := signedChat(originKey("alice"), "Alice", 1, "hi")
	first := appendOK(t, l, chat)[0]
	again := appendOK(t, l, chat)[0]
	if first.Duplicate || first.Seq != 1 {
		t.Errorf("first append = %+v, want seq 1, not a duplicate", first)
	}
	if !again.Duplicate || again.Seq != 0 {
		t.Errorf("second append = %+v, want a duplicate without seq", again)
	}
	if last, _ := l.LastSeq(); last != 1 {
		t.Errorf("LastSeq = %d after a duplicate, want 1", last)
	}
}

func TestTwoIdenticalChatsInOneAppendAreStoredOnce(t *testing.T) {
	l := newLog(t)
	chat := signedChat(originKey("alice"), "Alice", 1, "hi")
	res := appendOK(t, l, chat, chat)
	if res[0].Duplicate || res[0].Seq != 1 || !res[1].Duplicate || res[1].Seq != 0 {
		t.Errorf("Append = %+v; want the first stored as 1 and the second a duplicate", res)
	}
	if chats, _ := l.LastChats(10); len(chats) != 1 {
		t.Errorf("the log holds %d chats, want 1", len(chats))
	}
}

func TestADuplicateIsDecidedByOriginAndSeqAlone(t *testing.T) {
	l := newLog(t)
	alice := originKey("alice")
	appendOK(t, l, signedChat(alice, "Alice", 1, "first wording"))
	res := appendOK(t, l,
		signedChat(alice, "Alice", 1, "second wording"),
		signedChat(originKey("bob"), "Bob", 1, "first wording"),
	)
	if !res[0].Duplicate {
		t.Errorf("another line with alice's seq 1 was stored: %+v", res[0])
	}
	if res[1].Duplicate {
		t.Errorf("bob's seq 1 was taken for a duplicate of alice's")
	}
}

func TestOwnChatsAreNumberedFromOneAndSigned(t *testing.T) {
	l := newLog(t)
	var got []eventlog.Chat
	for _, batch := range [][]eventlog.Body{
		{eventlog.Chat{Name: "Me", Text: "one"}},
		{eventlog.Chat{Name: "Me", Text: "two"}, eventlog.Chat{Name: "Me", Text: "three"}},
		{eventlog.Chat{Name: "Me", Text: "four"}},
	} {
		for _, r := range appendOK(t, l, batch...) {
			got = append(got, r.Body.(eventlog.Chat))
		}
	}
	stored, err := l.LastChats(10)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range got {
		if c.OriginSeq != uint64(i+1) || c.Origin != l.Self() || c.OriginTime.IsZero() {
			t.Errorf("own chat %d = seq %d origin %s time %v; want seq %d from self", i, c.OriginSeq, c.Origin.Short(), c.OriginTime, i+1)
		}
		if err := c.Verify(); err != nil {
			t.Errorf("own chat %d does not verify: %v", i, err)
		}
		if !reflect.DeepEqual(stored[i].Body, c) {
			t.Errorf("own chat %d is stored as %+v, Append reported %+v", i, stored[i].Body, c)
		}
	}
}

func TestOwnNumberingContinuesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendOK(t, l, eventlog.Chat{Name: "Me", Text: "one"}, eventlog.Nick{Name: "Myself"})
	l.Close()
	st.Close()

	l = openLog(t, dir, store.Options{}, eventlog.Options{})
	res := appendOK(t, l, eventlog.Chat{Name: "Myself", Text: "three"})
	if seq := res[0].Body.(eventlog.Chat).OriginSeq; seq != 3 {
		t.Errorf("first own chat after reopen has origin seq %d, want 3", seq)
	}
}

func TestOwnNickSharesTheOriginSequenceOfOwnChats(t *testing.T) {
	l := newLog(t)
	res := appendOK(t, l, eventlog.Chat{Name: "Me", Text: "one"}, eventlog.Nick{Name: "Mee"}, eventlog.Chat{Name: "Mee", Text: "two"})
	nick := res[1].Body.(eventlog.Nick)
	if nick.OriginSeq != 2 || nick.Origin != l.Self() || nick.Verify() != nil {
		t.Errorf("own nick = %+v (verify: %v); want origin seq 2, signed by self", nick, nick.Verify())
	}
	if seq := res[2].Body.(eventlog.Chat).OriginSeq; seq != 3 {
		t.Errorf("the chat after the nick has origin seq %d, want 3", seq)
	}
}

// TestOwnNumberingFollowsTheHighestOwnLineHeld: a log that lacks the
// node's first line (restored from an old backup, and lines 2 and 3 came
// back from a peer) must not number a new line 1, which peers hold
// already and would drop as a duplicate.
func TestOwnNumberingFollowsTheHighestOwnLineHeld(t *testing.T) {
	l := newLog(t)
	appendOK(t, l, signedChat(l.Key(), "Me", 2, "two"), signedChat(l.Key(), "Me", 3, "three"))
	res := appendOK(t, l, eventlog.Chat{Name: "Me", Text: "four"}, eventlog.Nick{Name: "Me2"})
	if a, b := res[0].Body.(eventlog.Chat).OriginSeq, res[1].Body.(eventlog.Nick).OriginSeq; a != 4 || b != 5 {
		t.Errorf("own chat and nick got origin seqs %d and %d, want 4 and 5", a, b)
	}
	if res[0].Duplicate || res[1].Duplicate {
		t.Errorf("an own chat was taken for a duplicate: %+v", res)
	}
}

func TestWatermarkStopsBelowAHoleUntilItFills(t *testing.T) {
	l := newLog(t)
	alice := originKey("alice")
	for _, step := range []struct {
		seqs []uint64
		want uint64
	}{
		{[]uint64{2, 3}, 0},
		{[]uint64{1}, 3},
		{[]uint64{5, 6}, 3},
		{[]uint64{4}, 6},
		{[]uint64{4}, 6},
		{[]uint64{8}, 6},
	} {
		for _, s := range step.seqs {
			appendOK(t, l, signedChat(alice, "Alice", s, "x"))
		}
		marks, err := l.Watermarks()
		if err != nil {
			t.Fatal(err)
		}
		if got := marks[idOf(alice)]; got != step.want {
			t.Errorf("after seqs %v the watermark is %d, want %d", step.seqs, got, step.want)
		}
	}
}

func TestByOriginReturnsOneOriginsMessagesInOriginOrder(t *testing.T) {
	l := newLog(t)
	alice, bob := originKey("alice"), originKey("bob")
	appendOK(t, l,
		signedChat(alice, "Alice", 3, "c"),
		signedChat(bob, "Bob", 1, "b1"),
		signedChat(alice, "Alice", 1, "a"),
		signedNick(alice, "Alicia", 2),
		signedChat(alice, "Alice", 5, "e"),
	)
	for _, c := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 10, []uint64{1, 2, 3, 5}},
		{1, 10, []uint64{2, 3, 5}},
		{0, 2, []uint64{1, 2}},
		{3, 10, []uint64{5}},
		{5, 10, nil},
		{math.MaxUint64, 10, nil},
		{0, 0, nil},
	} {
		events, err := l.ByOrigin(idOf(alice), c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range events {
			origin, seq := e.Body.(eventlog.Signed).OriginKey()
			if origin != idOf(alice) {
				t.Errorf("ByOrigin(alice) returned a message of %s", origin.Short())
			}
			got = append(got, seq)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ByOrigin(alice, after %d, limit %d) = %v, want %v", c.after, c.limit, got, c.want)
		}
	}
	if events, err := l.ByOrigin(peerID("nobody"), 0, 10); err != nil || len(events) != 0 {
		t.Errorf("ByOrigin of an unknown origin = %v, %v; want nothing", events, err)
	}
}

func TestByOriginPageStopsAtItsBytesAndSaysMoreMayFollow(t *testing.T) {
	l := newLog(t)
	alice := originKey("alice")
	long := strings.Repeat("x", 1000)
	appendOK(t, l,
		signedChat(alice, "Alice", 1, long),
		signedChat(alice, "Alice", 2, long),
		signedChat(alice, "Alice", 3, long),
	)
	for _, c := range []struct {
		limit, maxBytes int
		want            int
		full            bool
	}{
		{10, 0, 3, false},
		{10, 1, 1, true}, // one event at least
		{10, 1500, 2, true},
		{2, 0, 2, true},
		{3, 0, 3, false},
	} {
		events, full, err := l.ByOriginPage(idOf(alice), 0, c.limit, c.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != c.want || full != c.full {
			t.Errorf("ByOriginPage(limit %d, %d bytes) = %d events, full %v; want %d, %v", c.limit, c.maxBytes, len(events), full, c.want, c.full)
		}
	}
}

func TestConcurrentAppendsAreAllStoredAndAcknowledged(t *testing.T) {
	l := newLog(t)
	const writers, each = 8, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  = map[uint64]bool{}
		errs []error
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				res, err := l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "hi"})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					got[res[0].Body.(eventlog.Chat).OriginSeq] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d appends failed, the first: %v", len(errs), errs[0])
	}
	for s := uint64(1); s <= writers*each; s++ {
		if !got[s] {
			t.Errorf("no append was acknowledged with origin seq %d", s)
		}
	}
	if last, _ := l.LastSeq(); last != writers*each {
		t.Errorf("LastSeq = %d, want %d", last, writers*each)
	}
	assertClean(t, l)
}

func TestAppendOfNothingWritesNothing(t *testing.T) {
	l := newLog(t)
	res, err := l.Append(context.Background())
	if err != nil || len(res) != 0 {
		t.Errorf("Append() = %v, %v; want nothing", res, err)
	}
	if last, _ := l.LastSeq(); last != 0 {
		t.Errorf("LastSeq = %d, want 0", last)
	}
}

func TestAppendAfterCloseFailsWithErrClosed(t *testing.T) {
	l := newLog(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), eventlog.Unban{ID: peerID("bob")}); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAppendToAReadOnlyLogFailsWithErrReadOnly(t *testing.T) {
	l := openLog(t, t.TempDir(), store.Options{}, eventlog.Options{ReadOnly: true})
	if _, err := l.Append(context.Background(), eventlog.Unban{ID: peerID("bob")}); !errors.Is(err, eventlog.ErrReadOnly) {
		t.Errorf("Append on a read-only log = %v, want ErrReadOnly", err)
	}
}

func TestAReadOnlyLogReadsWhatTheWriterStored(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendOK(t, w, signedChat(originKey("alice"), "Alice", 1, "persisted"))
	w.Close()
	st.Close()

	l := openLog(t, dir, store.Options{ReadOnly: true}, eventlog.Options{ReadOnly: true})
	chats, err := l.LastChats(1)
	if err != nil || len(chats) != 1 || chats[0].Body.(eventlog.Chat).Text != "persisted" {
		t.Errorf("LastChats(1) = %+v, %v; want the persisted line", chats, err)
	}
}

func TestTheLogsIdentityIsTheStores(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, store.Options{}, eventlog.Options{})
	want, err := eventlog.IDFromKey(l.Key().Public().(ed25519.PublicKey))
	if err != nil || l.Self() != want || l.Self().IsZero() {
		t.Errorf("Self = %s, want the ID of Key, %s", l.Self(), want)
	}
}

func TestAnInvalidBodyFailsOnlyItsOwnAppend(t *testing.T) {
	l := newLog(t)
	const rounds = 40
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		validErrs  []error
		invalidOKs int
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if w%2 == 0 {
					_, err := l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "fine"})
					if err != nil {
						mu.Lock()
						validErrs = append(validErrs, err)
						mu.Unlock()
					}
					continue
				}
				for _, bad := range []eventlog.Body{nil, foreignBody{}} {
					if _, err := l.Append(context.Background(), eventlog.Unban{ID: peerID("bob")}, bad); err == nil {
						mu.Lock()
						invalidOKs++
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(validErrs) > 0 {
		t.Errorf("%d valid appends failed beside invalid ones, the first: %v", len(validErrs), validErrs[0])
	}
	if invalidOKs > 0 {
		t.Errorf("%d appends with an invalid body succeeded", invalidOKs)
	}
	if last, _ := l.LastSeq(); last != 3*rounds {
		t.Errorf("LastSeq = %d, want %d: only the valid appends may be stored", last, 3*rounds)
	}
}

func TestAMessageTooFarAheadOfItsOriginIsNotStored(t *testing.T) {
	l := openLog(t, t.TempDir(), store.Options{NoSync: true}, eventlog.Options{MaxAhead: 10})
	alice := originKey("alice")
	res, err := l.Append(context.Background(),
		signedChat(alice, "Alice", 10, "within reach"),
		signedChat(alice, "Alice", 11, "one too far"),
		eventlog.Chat{Name: "Me", Text: "own lines are never refused"})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].TooFarAhead || res[0].Seq == 0 {
		t.Errorf("seq 10 with watermark 0 and MaxAhead 10: %+v, want stored", res[0])
	}
	if !res[1].TooFarAhead || res[1].Seq != 0 {
		t.Errorf("seq 11: %+v, want refused as too far ahead", res[1])
	}
	if res[2].TooFarAhead || res[2].Seq == 0 {
		t.Errorf("own line: %+v, want stored", res[2])
	}
	// Once the gap fills, the bound moves with the watermark.
	var fill []eventlog.Body
	for seq := uint64(1); seq <= 9; seq++ {
		fill = append(fill, signedChat(alice, "Alice", seq, "fill"))
	}
	fill = append(fill, signedChat(alice, "Alice", 20, "now within reach"))
	res, err = l.Append(context.Background(), fill...)
	if err != nil {
		t.Fatal(err)
	}
	if last := res[len(res)-1]; last.TooFarAhead || last.Seq == 0 {
		t.Errorf("seq 20 after the watermark reached 10: %+v, want stored", last)
	}
}

func TestSyncStateListsHolesPerOrigin(t *testing.T) {
	l := openLog(t, t.TempDir(), store.Options{NoSync: true}, eventlog.Options{})
	alice, bob := originKey("alice"), originKey("bob")
	var bodies []eventlog.Body
	for _, seq := range []uint64{1, 2, 3, 6, 9, 10, 3} { // a duplicate, too
		bodies = append(bodies, signedChat(alice, "Alice", seq, "a"))
	}
	bodies = append(bodies, signedChat(bob, "Bob", 2, "b")) // bob's first is missing
	if _, err := l.Append(context.Background(), bodies...); err != nil {
		t.Fatal(err)
	}
	states, err := l.SyncState()
	if err != nil {
		t.Fatal(err)
	}
	got := map[eventlog.NodeID]eventlog.OriginState{}
	for _, s := range states {
		got[s.Origin] = s
	}
	a := got[idOf(alice)]
	wantA := []eventlog.Range{{From: 4, To: 5}, {From: 7, To: 8}}
	if a.Watermark != 3 || a.Max != 10 || !reflect.DeepEqual(a.Missing, wantA) {
		t.Errorf("alice: %+v, want watermark 3, max 10, missing %v", a, wantA)
	}
	b := got[idOf(bob)]
	if b.Watermark != 0 || b.Max != 2 || !reflect.DeepEqual(b.Missing, []eventlog.Range{{From: 1, To: 1}}) {
		t.Errorf("bob: %+v, want watermark 0, max 2, missing 1-1", b)
	}
}

func TestHoldsTellsWhichMessagesAreStoredAlready(t *testing.T) {
	l := openLog(t, t.TempDir(), store.Options{NoSync: true}, eventlog.Options{})
	alice := originKey("alice")
	if _, err := l.Append(context.Background(), signedChat(alice, "Alice", 1, "a"), signedNick(alice, "Al", 3)); err != nil {
		t.Fatal(err)
	}
	got, err := l.Holds([]eventlog.Signed{
		signedChat(alice, "Alice", 1, "a copy"),
		signedChat(alice, "Alice", 2, "new"),
		signedChat(alice, "Alice", 3, "same seq as the rename"),
		signedChat(alice, "Alice", 4, "past the highest held"),
		signedChat(originKey("bob"), "Bob", 1, "another origin"),
		signedChat(alice, "Alice", 1, "the first again, after others"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false, false, true}; !reflect.DeepEqual(got, want) {
		t.Errorf("Holds = %v, want %v", got, want)
	}
}

func TestAnOriginPastTheHistoryBoundIsNotStored(t *testing.T) {
	l := openLog(t, t.TempDir(), store.Options{NoSync: true}, eventlog.Options{MaxPerOrigin: 2})
	alice := originKey("alice")
	res, err := l.Append(context.Background(),
		signedChat(alice, "Alice", 1, "one"),
		signedChat(alice, "Alice", 2, "two"),
		signedChat(alice, "Alice", 3, "three is past the bound"))
	if err != nil {
		t.Fatal(err)
	}
	if res[1].TooFarAhead || !res[2].TooFarAhead || res[2].Seq != 0 {
		t.Errorf("results %+v: want the third refused, the others stored", res)
	}
	for range 3 { // the node's own lines are not bounded
		if res, err := l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "mine"}); err != nil || res[0].TooFarAhead {
			t.Fatalf("own line: %+v, %v", res, err)
		}
	}
}
