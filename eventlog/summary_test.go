package eventlog_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// summariesMatchSyncState checks the in-memory summaries against a fresh
// walk of the origin index.
func summariesMatchSyncState(t *testing.T, l *eventlog.Log) {
	t.Helper()
	sums, err := l.Summaries()
	if err != nil {
		t.Fatal(err)
	}
	states, err := l.SyncState()
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != len(states) {
		t.Fatalf("%d summaries, %d origins in the index", len(sums), len(states))
	}
	for i, s := range states {
		if i > 0 && bytes.Compare(sums[i-1].Origin[:], sums[i].Origin[:]) >= 0 {
			t.Fatalf("summaries not sorted at %d", i)
		}
		if sums[i].Origin != s.Origin || sums[i].Max != s.Max || sums[i].Digest != s.Digest() {
			t.Errorf("summary %d = %+v, index says %+v", i, sums[i], s)
		}
	}
}

func TestSummariesFollowEveryAppend(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, store.Options{NoSync: true}, eventlog.Options{})
	alice, bob, carol := originKey("alice"), originKey("bob"), originKey("carol")
	ctx := context.Background()
	summariesMatchSyncState(t, l) // empty
	if _, err := l.Append(ctx, signedChat(alice, "Alice", 1, "a"), signedChat(alice, "Alice", 3, "a")); err != nil {
		t.Fatal(err)
	}
	summariesMatchSyncState(t, l)
	before, _ := l.Summaries()
	digest := before[0].Digest
	// A new origin, and the hole of an old one filled.
	if _, err := l.Append(ctx, signedChat(bob, "Bob", 1, "b"), signedChat(alice, "Alice", 2, "a"), signedChat(carol, "Carol", 5, "c")); err != nil {
		t.Fatal(err)
	}
	summariesMatchSyncState(t, l)
	after, _ := l.Summaries()
	for _, s := range after {
		if s.Origin == idOf(alice) && s.Digest == digest {
			t.Error("alice's digest did not change when her hole was filled")
		}
	}
	if len(before) != 1 || before[0].Origin != idOf(alice) {
		t.Errorf("an earlier snapshot changed under its holder: %+v", before)
	}
	// A duplicate changes nothing and costs no copy.
	if _, err := l.Append(ctx, signedChat(bob, "Bob", 1, "b")); err != nil {
		t.Fatal(err)
	}
	again, _ := l.Summaries()
	if len(again) != len(after) || &again[0] != &after[0] {
		t.Error("a duplicate made a new snapshot")
	}
}
