package eventlog_test

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

func TestOnCommitSeesEveryCommittedEvent(t *testing.T) {
	var events, commits atomic.Int64
	l := openLog(t, filepath.Join(t.TempDir(), "node"), store.Options{}, eventlog.Options{
		OnCommit: func(n int, took time.Duration) {
			events.Add(int64(n))
			commits.Add(1)
			if took <= 0 {
				t.Errorf("commit took %v", took)
			}
		},
	})
	alice := originKey("alice")
	appendOK(t, l, signedChat(alice, "Alice", 1, "a"), signedChat(alice, "Alice", 2, "b"))
	appendOK(t, l, eventlog.Disconnect{ID: idOf(alice)})
	// Append returns after the writer acknowledged, and the hook runs
	// before the acknowledgement.
	if events.Load() != 3 || commits.Load() != 2 {
		t.Errorf("OnCommit saw %d events in %d commits, want 3 in 2", events.Load(), commits.Load())
	}
}
