package peering

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
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

// A bad line at the end of a burst of good ones, live or in a catch-up
// answer, is refused alone: the node stores every good line before it,
// also those checked in the same batch, never stores or shows the bad
// one, and drops the peer that sent a forged, altered or reordered line,
// as before signatures were checked in batches. (What a dropped peer sent
// after the bad line is never read, as before.) A fork (the author's own second line under a number
// already used) is validly signed: the first one stays, the fork is
// neither stored nor shown, and the relaying peer is not to blame.
func TestABadLineAfterGoodOnesIsRefusedAloneLiveAndInCatchUp(t *testing.T) {
	const lines = 300
	const badText = "the bad line"
	carolKey, carol := netTestNewKey(t)
	good := make([]wire.ChatMsg, lines)
	for i := range good {
		good[i] = netTestChat(carolKey, uint64(i+1), fmt.Sprintf("carol's line %d", i+1))
	}
	kinds := []struct {
		name  string
		bad   func(mallory ed25519.PrivateKey) wire.ChatMsg
		drops bool
	}{
		{"forged", func(mallory ed25519.PrivateKey) wire.ChatMsg {
			m := netTestChat(mallory, lines+1, badText)
			m.Origin = carol
			return m
		}, true},
		{"altered", func(ed25519.PrivateKey) wire.ChatMsg {
			m := netTestChat(carolKey, lines+1, "carol's own words")
			m.Text = badText
			return m
		}, true},
		{"reordered", func(ed25519.PrivateKey) wire.ChatMsg {
			m := good[9]
			m.Seq, m.Text = lines+1, badText
			m.Sig = netTestChat(carolKey, 10, badText).Sig
			return m
		}, true},
		{"forked", func(ed25519.PrivateKey) wire.ChatMsg { return netTestChat(carolKey, 100, badText) }, false},
	}
	for _, frame := range []string{wire.FrameChat, wire.FrameCatchup} {
		for _, kind := range kinds {
			t.Run(frame+"/"+kind.name, func(t *testing.T) {
				a := netTestStart(t, "Alice", nil)
				malloryKey, _ := netTestNewKey(t)
				p := netTestDialTLS(t, a.Addr().String(), malloryKey)
				if err := p.join("Mallory"); err != nil {
					t.Fatal(err)
				}
				var burst []byte
				for _, m := range append(slices.Clone(good), kind.bad(malloryKey)) {
					var payload any = m
					if frame == wire.FrameCatchup {
						payload = wire.CatchupMsg{Chat: &m}
					}
					f, err := wire.EncodeFrame(frame, payload, 0)
					if err != nil {
						t.Fatal(err)
					}
					burst = append(burst, f...)
				}
				_ = p.tc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := p.tc.Write(burst); err != nil {
					t.Fatal(err)
				}
				sent := make([]eventlog.Signed, lines)
				for i, m := range good {
					sent[i] = m.Event()
				}
				netTestWaitFor(t, 20*time.Second, "Alice holding every good line", func() bool {
					held, err := a.log.Holds(sent)
					return err == nil && !slices.Contains(held, false)
				})
				if kind.drops {
					if err := hostileTestClosed(p.tc, 10*time.Second); err != nil {
						t.Errorf("Alice kept the peer that sent a %s line: %v", kind.name, err)
					}
				}
				stored, err := a.log.LastLines(2 * lines)
				if err != nil {
					t.Fatal(err)
				}
				if len(stored) != lines {
					t.Errorf("Alice holds %d lines, want the %d good ones", len(stored), lines)
				}
				for _, e := range stored {
					if c := e.Body.(eventlog.Chat); c.Text == badText {
						t.Errorf("Alice stored the %s line as seq %d", kind.name, c.OriginSeq)
					}
				}
				if a.display.saw(badText) {
					t.Errorf("Alice showed the %s line", kind.name)
				}
				if !kind.drops && !slices.ContainsFunc(a.Users(), func(u User) bool { return u.ID == p.id }) {
					t.Error("Alice dropped the peer that relayed a fork")
				}
			})
		}
	}
}
