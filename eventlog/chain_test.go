package eventlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// chainOf is n lines of one origin from seq 1, each chaining to the one
// before.
func chainOf(name string, n int) []eventlog.Signed {
	key := originKey(name)
	out := make([]eventlog.Signed, 0, n)
	var prev eventlog.Signed
	for seq := uint64(1); seq <= uint64(n); seq++ {
		text := fmt.Sprintf("line %d of %s", seq, name)
		if prev == nil {
			prev = signedChat(key, name, seq, text)
		} else {
			prev = chainedChat(key, name, seq, text, prev)
		}
		out = append(out, prev)
	}
	return out
}

// badlySigned is c with a signature that fails.
func badlySigned(c eventlog.Chat) eventlog.Chat {
	c.Sig = bytes.Clone(c.Sig)
	c.Sig[0] ^= 1
	return c
}

// verifyEach is what checking every message alone says.
func verifyEach(ms []eventlog.Signed) []error {
	out := make([]error, len(ms))
	for i, m := range ms {
		out[i] = eventlog.VerifySigned(m)
	}
	return out
}

// TestVerifyChainedAgreesWithSingleChecks: whatever is done to a batch
// of chained lines (a forged, altered, reordered or forked line, a
// dropped one), VerifyChained refuses exactly the messages a check of
// each alone refuses, with the same errors.
func TestVerifyChainedAgreesWithSingleChecks(t *testing.T) {
	alice, bob := chainOf("alice", 40), chainOf("bob", 40)
	mallory := originKey("mallory")
	interleave := func() []eventlog.Signed {
		var ms []eventlog.Signed
		for i := range alice {
			ms = append(ms, alice[i], bob[i])
		}
		return ms
	}
	// altered is Alice's lines with line i changed by change.
	altered := func(i int, change func(*eventlog.Chat)) func() []eventlog.Signed {
		return func() []eventlog.Signed {
			ms := slices.Clone(alice)
			c := ms[i].(eventlog.Chat)
			change(&c)
			ms[i] = c
			return ms
		}
	}
	cases := map[string]func() []eventlog.Signed{
		"clean":                    interleave,
		"one origin":               func() []eventlog.Signed { return slices.Clone(alice) },
		"nothing":                  func() []eventlog.Signed { return nil },
		"one message":              func() []eventlog.Signed { return alice[:1] },
		"altered text mid-run":     altered(20, func(c *eventlog.Chat) { c.Text = "pay mallory" }),
		"altered text at the tail": altered(39, func(c *eventlog.Chat) { c.Text = "pay mallory" }),
		"altered signature mid-run": altered(10, func(c *eventlog.Chat) {
			c.Sig = bytes.Clone(c.Sig)
			c.Sig[5] ^= 1
		}),
		"forged in another's name, chained to a real line": func() []eventlog.Signed {
			ms := slices.Clone(alice[:30])
			forged := chainedChat(mallory, "alice", 31, "forged", ms[29])
			forged.Origin = alice[0].(eventlog.Chat).Origin
			return append(ms, forged)
		},
		"forged line the real chain goes on from": func() []eventlog.Signed {
			ms := slices.Clone(alice)
			forged := chainedChat(mallory, "alice", 21, "forged", ms[19])
			forged.Origin = alice[0].(eventlog.Chat).Origin
			ms[20] = forged
			return ms
		},
		"reordered": func() []eventlog.Signed {
			ms := interleave()
			ms[10], ms[30] = ms[30], ms[10]
			slices.Reverse(ms[40:60])
			return ms
		},
		"a gap": func() []eventlog.Signed {
			return slices.Delete(slices.Clone(alice), 15, 17)
		},
		"forked: a second line 21 and what follows it": func() []eventlog.Signed {
			ms := slices.Clone(alice[:21])
			key := originKey("alice")
			other := chainedChat(key, "alice", 21, "the other 21", ms[19])
			return append(ms, other, chainedChat(key, "alice", 22, "after the other", other))
		},
		"bad fields": func() []eventlog.Signed {
			ms := slices.Clone(alice)
			c := ms[5].(eventlog.Chat)
			c.Prev = c.Prev[:7]
			ms[5] = c
			c = ms[0].(eventlog.Chat)
			c.Prev = bytes.Repeat([]byte{1}, eventlog.ChainHashSize)
			ms[0] = c
			return append(ms, nil)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			ms := build()
			got, want := eventlog.VerifyChained(ms), verifyEach(ms)
			for i := range ms {
				if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
					t.Errorf("message %d: VerifyChained says %v, a check alone %v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestVerifyChainedTakesTheChainsWord: the documented difference. A
// chained line whose own signature fails is taken when its origin signed
// a line that chains to it, since only the origin could have; alone it is
// refused, and open (a successor not in the batch may vouch for it).
func TestVerifyChainedTakesTheChainsWord(t *testing.T) {
	key := originKey("alice")
	first := signedChat(key, "alice", 1, "one")
	bad := badlySigned(chainedChat(key, "alice", 2, "two", first))
	third := chainedChat(key, "alice", 3, "three", bad)
	errs := eventlog.VerifyChained([]eventlog.Signed{first, bad, third})
	if errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("VerifyChained = %v, want the chain's word taken", errs)
	}
	if err := eventlog.VerifySigned(bad); !errors.Is(err, eventlog.ErrBadSignature) {
		t.Fatalf("alone: %v, want ErrBadSignature", err)
	}
	errs, open, _ := eventlog.VerifyChainedOpen([]eventlog.Signed{first, bad})
	if errs[0] != nil || !errors.Is(errs[1], eventlog.ErrBadSignature) || open[0] || !open[1] {
		t.Fatalf("without its successor: %v open %v, want the line refused and open", errs, open)
	}
}

// TestVerifyChainedVouchesOnlyForChainedLines: an unchained line (an
// origin's first, or one from before chains) may go to peers of older
// versions, which check it alone: no successor vouches for it.
func TestVerifyChainedVouchesOnlyForChainedLines(t *testing.T) {
	key := originKey("alice")
	first := badlySigned(signedChat(key, "alice", 1, "one"))
	second := chainedChat(key, "alice", 2, "two", first)
	errs, open, _ := eventlog.VerifyChainedOpen([]eventlog.Signed{first, second})
	if !errors.Is(errs[0], eventlog.ErrBadSignature) || errs[1] != nil || open[0] || open[1] {
		t.Fatalf("VerifyChainedOpen = %v open %v, want the unchained line refused, not open", errs, open)
	}
}

// TestVerifyChainedDecidesAlikeWhateverTheTail: a run whose tail fails
// still takes what a valid line inside it vouches for, as a batch ending
// at that line would; the failed lines after it are open while nothing of
// their origin follows them in the batch, and refused for good once
// something that does not chain to them does.
func TestVerifyChainedDecidesAlikeWhateverTheTail(t *testing.T) {
	key := originKey("alice")
	l1 := signedChat(key, "alice", 1, "one")
	l2 := badlySigned(chainedChat(key, "alice", 2, "two", l1))
	l3 := chainedChat(key, "alice", 3, "three", l2)
	l4 := badlySigned(chainedChat(key, "alice", 4, "four", l3))
	l5 := badlySigned(chainedChat(key, "alice", 5, "five", l4))
	other := signedChat(originKey("bob"), "bob", 1, "bob's")
	ms := []eventlog.Signed{l1, l2, other, l3, l4, l5}
	errs, open, _ := eventlog.VerifyChainedOpen(ms)
	for i, want := range []bool{false, false, false, false, true, true} {
		if (errs[i] != nil) != want || open[i] != want {
			t.Errorf("message %d: %v open %v, want refused and open: %v", i, errs[i], open[i], want)
		}
	}
	// A sixth line that does not chain to the fifth closes them.
	l6 := signedChat(key, "alice", 6, "six, unchained")
	errs, open, _ = eventlog.VerifyChainedOpen(append(ms, l6))
	for i, want := range []bool{false, false, false, false, true, true, false} {
		if (errs[i] != nil) != want || open[i] {
			t.Errorf("with a breaking successor, message %d: %v open %v, want refused: %v, never open", i, errs[i], open[i], want)
		}
	}
}

// TestVerifyChainedOpenKnownTakesTheEarlierChecksWord: failures found
// by an earlier check are not checked again; told them, it decides the
// batch as a full check does, and a message it is told fails is refused
// whatever its signature, unless a successor vouches for it.
func TestVerifyChainedOpenKnownTakesTheEarlierChecksWord(t *testing.T) {
	key := originKey("alice")
	l1 := signedChat(key, "alice", 1, "one")
	l2 := badlySigned(chainedChat(key, "alice", 2, "two", l1))
	l3 := badlySigned(chainedChat(key, "alice", 3, "three", l2))
	l4 := chainedChat(key, "alice", 4, "four", l3)
	held := []eventlog.Signed{l1, l2, l3}
	errs, open, _ := eventlog.VerifyChainedOpen(held)
	if !open[1] || !open[2] {
		t.Fatalf("lines 2 and 3 without line 4: open %v, want both open", open)
	}
	for _, ms := range [][]eventlog.Signed{held, append(slices.Clone(held), l4)} {
		known := make([]error, len(ms))
		copy(known, errs)
		wantErrs, wantOpen, wantBy := eventlog.VerifyChainedOpen(ms)
		gotErrs, gotOpen, gotBy := eventlog.VerifyChainedOpenKnown(ms, known)
		for i := range ms {
			if (gotErrs[i] == nil) != (wantErrs[i] == nil) || gotOpen[i] != wantOpen[i] || gotBy[i] != wantBy[i] {
				t.Errorf("%d messages, message %d: %v open %v vouched by %d; a full check says %v, %v, %d",
					len(ms), i, gotErrs[i], gotOpen[i], gotBy[i], wantErrs[i], wantOpen[i], wantBy[i])
			}
		}
	}
	// Told that line 1, whose signature holds, fails: it is not checked
	// again, and nothing chains to an unchained line.
	told := errors.New("failed before")
	errs, _, _ = eventlog.VerifyChainedOpenKnown([]eventlog.Signed{l1}, []error{told})
	if !errors.Is(errs[0], told) {
		t.Errorf("told line 1 fails: %v, want the earlier check's error", errs[0])
	}
}

// TestVouchesSaysWhatTheLogHoldsAfterAMessage: the held successor that
// chains to a message vouches for it; another is a fork.
func TestVouchesSaysWhatTheLogHoldsAfterAMessage(t *testing.T) {
	l := newLog(t)
	key := originKey("alice")
	l1 := signedChat(key, "alice", 1, "one")
	l2 := chainedChat(key, "alice", 2, "two", l1)
	l2.Sig = bytes.Clone(l2.Sig)
	l2.Sig[0] ^= 1
	l3 := chainedChat(key, "alice", 3, "three", l2)
	appendOK(t, l, l1, l3)
	other2 := chainedChat(key, "alice", 2, "another two", l1)
	got, err := l.Vouches([]eventlog.Signed{l2, other2, l3, l1})
	if err != nil {
		t.Fatal(err)
	}
	want := []eventlog.Vouch{eventlog.Vouched, eventlog.VouchOther, eventlog.VouchNone, eventlog.VouchNone}
	if !slices.Equal(got, want) {
		t.Errorf("Vouches = %v, want %v", got, want)
	}
}

// TestHeldOthersReturnsTheOtherLineUnderTheSameNumber: another line under
// a held (origin, seq), even one that differs only in its signature, is
// answered with the held one; the held line itself and a seq not held
// are not.
func TestHeldOthersReturnsTheOtherLineUnderTheSameNumber(t *testing.T) {
	l := newLog(t)
	key := originKey("alice")
	l1 := signedChat(key, "alice", 1, "one")
	l2 := chainedChat(key, "alice", 2, "two", l1)
	appendOK(t, l, l1, l2)
	other2 := chainedChat(key, "alice", 2, "another two", l1)
	resigned := l1
	resigned.Sig = bytes.Clone(l1.Sig)
	resigned.Sig[5] ^= 1
	unheld := chainedChat(key, "alice", 3, "three", l2)
	got, err := l.HeldOthers([]eventlog.Signed{l1, other2, resigned, unheld})
	if err != nil {
		t.Fatal(err)
	}
	want := []eventlog.Signed{nil, l2, l1, nil}
	for i := range want {
		if (got[i] == nil) != (want[i] == nil) || (got[i] != nil && !bytes.Equal(eventlog.ChainHash(got[i]), eventlog.ChainHash(want[i]))) {
			t.Errorf("HeldOthers[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestOwnLinesChain: the log numbers the node's own lines and chains each
// to the one before, across commits and message types.
func TestOwnLinesChain(t *testing.T) {
	l := newLog(t)
	ctx := context.Background()
	var stored []eventlog.Signed
	for _, bodies := range [][]eventlog.Body{
		{eventlog.Chat{Name: "Me", Text: "one"}},
		{eventlog.Chat{Name: "Me", Text: "two"}, eventlog.Nick{Name: "Me2"}, eventlog.Chat{Name: "Me2", Text: "three"}},
	} {
		res, err := l.Append(ctx, bodies...)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			stored = append(stored, r.Body.(eventlog.Signed))
		}
	}
	if c := stored[0].(eventlog.Chat); c.Prev != nil {
		t.Errorf("first line chains to %x, want nothing", c.Prev)
	}
	for i := 1; i < len(stored); i++ {
		var prev []byte
		switch b := stored[i].(type) {
		case eventlog.Chat:
			prev = b.Prev
		case eventlog.Nick:
			prev = b.Prev
		}
		if !bytes.Equal(prev, eventlog.ChainHash(stored[i-1])) {
			t.Errorf("message %d does not chain to %d", i+1, i)
		}
		if err := eventlog.VerifySigned(stored[i]); err != nil {
			t.Errorf("message %d: %v", i+1, err)
		}
	}
	// And they read back from disk as they were signed.
	evs, err := l.ByOrigin(l.Self(), 0, 10)
	if err != nil || len(evs) != len(stored) {
		t.Fatalf("ByOrigin = %d events, %v", len(evs), err)
	}
	for i, e := range evs {
		if !bytes.Equal(eventlog.ChainHash(e.Body.(eventlog.Signed)), eventlog.ChainHash(stored[i])) {
			t.Errorf("message %d reads back differently", i+1)
		}
	}
	assertClean(t, l)
}

// TestAppendRefusesForks: a line whose Prev does not name the held line
// before it, or a line that the held line after it does not name, is
// reported Forked and not stored, whichever comes first; the chain's
// own lines are stored in any order.
func TestAppendRefusesForks(t *testing.T) {
	l := newLog(t)
	ctx := context.Background()
	key := originKey("alice")
	chain := chainOf("alice", 4)
	other2 := chainedChat(key, "alice", 2, "the other 2", chain[0])
	after2 := chainedChat(key, "alice", 3, "after the other 2", other2)

	appendOne := func(m eventlog.Signed) eventlog.Result {
		t.Helper()
		res, err := l.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	// Line 3 first, then a 2 it does not name: a fork.
	if r := appendOne(chain[0]); r.Seq == 0 {
		t.Fatalf("line 1: %+v", r)
	}
	if r := appendOne(chain[2]); r.Seq == 0 {
		t.Fatalf("line 3 before 2: %+v", r)
	}
	if r := appendOne(other2); !r.Forked {
		t.Fatalf("a line 2 that the held 3 does not name: %+v, want Forked", r)
	}
	if r := appendOne(chain[1]); r.Seq == 0 {
		t.Fatalf("the line 2 that 3 names: %+v", r)
	}
	// A line 3 naming the other 2 is a duplicate number: dropped as held.
	if r := appendOne(after2); !r.Duplicate {
		t.Fatalf("a second line 3: %+v, want Duplicate", r)
	}
	// A line 4 naming another 3 than the one held: a fork.
	fork4 := chainedChat(key, "alice", 4, "after the other 3", after2)
	if r := appendOne(fork4); !r.Forked {
		t.Fatalf("a line 4 naming another 3: %+v, want Forked", r)
	}
	// In one batch, the right 4 goes in, then the other is a duplicate.
	res, err := l.Append(ctx, chain[3], fork4)
	if err != nil || res[0].Seq == 0 || !res[1].Duplicate {
		t.Fatalf("Append(4, other 4) = %+v, %v", res, err)
	}
	// An unchained line is not a fork of anything before it.
	plain := signedChat(key, "alice", 5, "unchained")
	if r := appendOne(plain); r.Seq == 0 {
		t.Fatalf("unchained line 5: %+v", r)
	}
	assertClean(t, l)
}

// TestOldUnchainedLinesStayValid: a log written before chains (no Prev
// anywhere) takes lines chaining to its old ones, and verifies clean.
func TestOldUnchainedLinesStayValid(t *testing.T) {
	l := newLog(t)
	ctx := context.Background()
	key := originKey("alice")
	old := []eventlog.Body{signedChat(key, "alice", 1, "one"), signedChat(key, "alice", 2, "two")}
	if _, err := l.Append(ctx, old...); err != nil {
		t.Fatal(err)
	}
	next := chainedChat(key, "alice", 3, "three", old[1].(eventlog.Chat))
	res, err := l.Append(ctx, next, eventlog.Chat{Name: "Me", Text: "mine"})
	if err != nil || res[0].Seq == 0 || res[1].Seq == 0 {
		t.Fatalf("Append = %+v, %v", res, err)
	}
	assertClean(t, l)
}

// TestAppendVouchedNeverStoresALineWithoutItsVoucher: a line taken on its
// successor's word is stored only with that successor (or a held copy of
// it); a successor refused past the log's bounds, or as a fork, takes the
// line with it, so the log never holds a badly signed line that nothing
// it holds vouches for.
func TestAppendVouchedNeverStoresALineWithoutItsVoucher(t *testing.T) {
	key := originKey("alice")
	l1 := signedChat(key, "alice", 1, "one")
	pair := func(seq uint64, prev eventlog.Signed) (bad, voucher eventlog.Chat) {
		bad = chainedChat(key, "alice", seq, "badly signed", prev)
		bad.Sig = bytes.Clone(bad.Sig)
		bad.Sig[0] ^= 1
		return bad, chainedChat(key, "alice", seq+1, "vouching", bad)
	}
	ctx := context.Background()

	t.Run("stored together", func(t *testing.T) {
		l := newLog(t)
		bad, voucher := pair(2, l1)
		res, err := l.AppendVouched(ctx, []eventlog.Body{l1, bad, voucher}, []int{-1, 2, -1})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Seq == 0 {
				t.Errorf("body %d not stored: %+v", i, r)
			}
		}
	})
	t.Run("voucher past MaxAhead", func(t *testing.T) {
		l := openLog(t, t.TempDir(), store.Options{NoSync: true}, eventlog.Options{MaxAhead: 10})
		appendOK(t, l, l1)
		// The watermark is 1: seq 11 is the last one allowed.
		prev := chainedChat(key, "alice", 10, "ten", l1)
		bad, voucher := pair(11, prev)
		res, err := l.AppendVouched(ctx, []eventlog.Body{bad, voucher}, []int{1, -1})
		if err != nil {
			t.Fatal(err)
		}
		if !res[1].TooFarAhead || !res[0].Unvouched || res[0].Seq != 0 {
			t.Errorf("results %+v, want the voucher too far ahead and the line unvouched", res)
		}
		if held, _ := l.Holds([]eventlog.Signed{bad}); held[0] {
			t.Error("the badly signed line is held without its voucher")
		}
	})
	t.Run("voucher a fork", func(t *testing.T) {
		l := newLog(t)
		bad, voucher := pair(2, l1)
		other3 := chainedChat(key, "alice", 3, "another three", l1)
		after := chainedChat(key, "alice", 4, "after the other three", other3)
		appendOK(t, l, l1, after)
		res, err := l.AppendVouched(ctx, []eventlog.Body{bad, voucher}, []int{1, -1})
		if err != nil {
			t.Fatal(err)
		}
		if !res[1].Forked || !res[0].Unvouched {
			t.Errorf("results %+v, want the voucher forked and the line unvouched", res)
		}
	})
	t.Run("voucher held already", func(t *testing.T) {
		l := newLog(t)
		bad, voucher := pair(2, l1)
		appendOK(t, l, l1, voucher)
		res, err := l.AppendVouched(ctx, []eventlog.Body{bad, voucher}, []int{1, -1})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Seq == 0 || !res[1].Duplicate {
			t.Errorf("results %+v, want the line stored on the held voucher's word", res)
		}
	})
}

// TestAVouchedRunStillRefusesForksAroundIt: a run stored on its callers'
// vouchers (each line's Prev not hashed again against the line written
// before it) is refused where it forks from what the log holds, at its
// head, in its middle or at its end.
func TestAVouchedRunStillRefusesForksAroundIt(t *testing.T) {
	key := originKey("alice")
	chain := chainOf("alice", 6)
	ctx := context.Background()
	vouched := func(n int) []int {
		by := make([]int, n)
		for i := range by {
			by[i] = i + 1
		}
		by[n-1] = -1
		return by
	}
	bodies := func(ms ...eventlog.Signed) []eventlog.Body {
		out := make([]eventlog.Body, len(ms))
		for i, m := range ms {
			out[i] = m
		}
		return out
	}

	t.Run("between held lines", func(t *testing.T) {
		l := newLog(t)
		appendOK(t, l, chain[0], chain[1], chain[5])
		res, err := l.AppendVouched(ctx, bodies(chain[2], chain[3], chain[4]), vouched(3))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Seq == 0 {
				t.Errorf("line %d of the run not stored: %+v", i+3, r)
			}
		}
		assertClean(t, l)
	})
	t.Run("on a held line's fork", func(t *testing.T) {
		l := newLog(t)
		appendOK(t, l, chain[0], chain[1], chain[2])
		other3 := chainedChat(key, "alice", 3, "another three", chain[1])
		after := chainedChat(key, "alice", 4, "after the other three", other3)
		res, err := l.AppendVouched(ctx, bodies(other3, after), vouched(2))
		if err != nil {
			t.Fatal(err)
		}
		if !res[0].Duplicate || !res[1].Forked {
			t.Errorf("results %+v, want the other 3 a duplicate and the 4 naming it forked", res)
		}
		assertClean(t, l)
	})
	t.Run("into a held line", func(t *testing.T) {
		l := newLog(t)
		appendOK(t, l, chain[0], chain[1], chain[4])
		other3 := chainedChat(key, "alice", 3, "another three", chain[1])
		other4 := chainedChat(key, "alice", 4, "another four", other3)
		res, err := l.AppendVouched(ctx, bodies(other3, other4), vouched(2))
		if err != nil {
			t.Fatal(err)
		}
		if !res[1].Forked || !res[0].Unvouched {
			t.Errorf("results %+v, want the 4 the held 5 does not name forked, and the 3 it vouched for unvouched", res)
		}
		assertClean(t, l)
	})
}
