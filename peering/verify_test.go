package peering

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
)

// A batch's signatures are checked together; a bad one must be found
// wherever it sits and refused alone, the good ones around it kept in
// order, and the first bad one named in the violation that drops the
// peer.
func TestVerifyBatchRefusesOnlyTheBadSignatures(t *testing.T) {
	key, _ := netTestNewKey(t)
	for _, size := range []int{1, 15, 64, maxIngestBatch} {
		tried := map[int]bool{}
		for _, bad := range []int{-1, 0, size / 2, size - 1} {
			if tried[bad] {
				continue
			}
			tried[bad] = true
			t.Run(fmt.Sprintf("size=%d/bad=%d", size, bad), func(t *testing.T) {
				batch := make([]inbound, 0, size+1)
				refused := map[uint64]bool{}
				for i := range size {
					m := netTestChat(key, uint64(i+1), fmt.Sprintf("line %d", i))
					// Past the bad one, the last is bad too: the first
					// must be the one named.
					if i == bad || (bad >= 0 && i == size-1) {
						m.Sig[0] ^= 1
						refused[m.Seq] = true
					}
					batch = append(batch, inbound{body: m.Event(), live: true})
				}
				batch = append(batch, inbound{synced: true}) // the end of a catch-up, unsigned
				good, err := verifyBatch(batch)
				if len(good) != len(batch)-len(refused) {
					t.Fatalf("kept %d of %d with %d bad", len(good), len(batch), len(refused))
				}
				last := uint64(0)
				for _, m := range good[:len(good)-1] {
					_, seq := m.body.OriginKey()
					if refused[seq] || seq <= last {
						t.Fatalf("kept seq %d after %d; refused %v", seq, last, refused)
					}
					last = seq
				}
				if !good[len(good)-1].synced {
					t.Error("the end of the catch-up was lost")
				}
				if bad < 0 {
					if err != nil {
						t.Fatalf("good batch: %v", err)
					}
					return
				}
				if !errors.Is(err, eventlog.ErrBadSignature) || !errors.Is(err, errViolation) {
					t.Fatalf("got %v, want a violation for a bad signature", err)
				}
				if want := fmt.Sprintf("seq %d:", bad+1); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			})
		}
	}
}
