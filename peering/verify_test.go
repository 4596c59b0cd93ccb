package peering

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
)

// A batch's signatures are checked on several cores when it is large; the
// first bad one must be found and named wherever it sits, and a good batch
// pass.
func TestVerifyBatchFindsTheBadSignatureAnywhere(t *testing.T) {
	key, _ := netTestNewKey(t)
	for _, size := range []int{1, minParallelVerify - 1, minParallelVerify * 2, maxIngestBatch} {
		tried := map[int]bool{}
		for _, bad := range []int{-1, 0, size / 2, size - 1} {
			if tried[bad] {
				continue
			}
			tried[bad] = true
			t.Run(fmt.Sprintf("size=%d/bad=%d", size, bad), func(t *testing.T) {
				batch := make([]inbound, 0, size+1)
				for i := range size {
					m := netTestChat(key, uint64(i+1), fmt.Sprintf("line %d", i))
					// Past the bad one, the last is bad too: the first
					// must be the one named.
					if i == bad || (bad >= 0 && i == size-1) {
						m.Sig[0] ^= 1
					}
					batch = append(batch, inbound{body: m.Event(), live: true})
				}
				batch = append(batch, inbound{synced: true}) // the end of a catch-up, unsigned
				err := verifyBatch(batch)
				if bad < 0 {
					if err != nil {
						t.Fatalf("good batch: %v", err)
					}
					return
				}
				if !errors.Is(err, eventlog.ErrBadSignature) {
					t.Fatalf("got %v, want a bad signature", err)
				}
				if want := fmt.Sprintf("seq %d:", bad+1); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			})
		}
	}
}
