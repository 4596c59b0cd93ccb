package peering

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// A paste with a rename in the middle is stored in order, each line under
// the name in force when it was typed, numbered and chained without a
// hole, although the outbox signs a batch while the one before, with the
// rename, is still being stored; and Bob receives every line as stored.
func TestOwnLinesSignedAheadKeepTheirOrderAndNames(t *testing.T) {
	const half = 3 * maxIngestBatch
	a := netTestStart(t, "Alice", nil)
	b := netTestStart(t, "Bob", netTestSeeds(a))
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool { return a.connectedTo(b) && b.connectedTo(a) })
	ctx := context.Background()
	for i := range half {
		if err := a.Say(ctx, fmt.Sprintf("before %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Nick(ctx, "Alicia"); err != nil {
		t.Fatal(err)
	}
	for i := range half {
		if err := a.Say(ctx, fmt.Sprintf("after %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	const all = 2*half + 1
	for _, n := range []*netTestNode{a, b} {
		netTestWaitFor(t, 60*time.Second, n.Name()+" holding every message of Alice", func() bool {
			evs, err := n.log.ByOrigin(a.ID(), 0, all+1)
			return err == nil && len(evs) == all
		})
		evs, err := n.log.ByOrigin(a.ID(), 0, all+1)
		if err != nil {
			t.Fatal(err)
		}
		name, before, after := "Alice", 0, 0
		for i, e := range evs {
			s := e.Body.(eventlog.Signed)
			if _, seq := s.OriginKey(); seq != uint64(i+1) {
				t.Fatalf("%s: message %d of Alice has origin seq %d", n.Name(), i+1, seq)
			}
			switch m := s.(type) {
			case eventlog.Nick:
				name = m.Name
			case eventlog.Chat:
				want := fmt.Sprintf("before %d", before)
				if name == "Alicia" {
					want = fmt.Sprintf("after %d", after)
					after++
				} else {
					before++
				}
				if m.Text != want || m.Name != name {
					t.Fatalf("%s: message %d is %q from %q, want %q from %q", n.Name(), i+1, m.Text, m.Name, want, name)
				}
			}
		}
		if rep, err := n.log.Verify(ctx); err != nil || len(rep.Problems) > 0 {
			t.Errorf("%s's log does not verify: %v %v", n.Name(), err, rep.Problems)
		}
	}
}
