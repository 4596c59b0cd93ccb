package eventlog_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// verifySeedEnv replays a failure of the randomized batch test.
const verifySeedEnv = "P2PCHAT_VERIFY_SEED"

// VerifyBatch must judge every message exactly as VerifySigned does, and
// refuse only the bad ones, wherever they sit in a batch of any size and
// however many there are: forged, altered, reordered (a good signature
// moved onto another seq), with a broken field, or with no signature.
func TestVerifyBatchJudgesEachMessageAsVerifySignedDoes(t *testing.T) {
	rng := seededRand(t, verifySeedEnv)
	alice, bob, mallory := originKey("alice"), originKey("bob"), originKey("mallory")
	spoil := []struct {
		name string
		do   func(m eventlog.Signed, other eventlog.Signed) eventlog.Signed
	}{
		{"forged", func(m, _ eventlog.Signed) eventlog.Signed {
			c := m.(eventlog.Chat)
			origin := c.Origin
			c.Sign(mallory)
			c.Origin = origin
			return c
		}},
		{"altered text", func(m, _ eventlog.Signed) eventlog.Signed {
			c := m.(eventlog.Chat)
			c.Text += "!"
			return c
		}},
		{"reordered", func(m, other eventlog.Signed) eventlog.Signed {
			c := m.(eventlog.Chat)
			c.Sig = other.(eventlog.Chat).Sig
			return c
		}},
		{"flipped bit", func(m, _ eventlog.Signed) eventlog.Signed {
			c := m.(eventlog.Chat)
			c.Sig = append([]byte(nil), c.Sig...)
			c.Sig[rng.IntN(len(c.Sig))] ^= 1 << rng.IntN(8)
			return c
		}},
		{"truncated signature", func(m, _ eventlog.Signed) eventlog.Signed {
			c := m.(eventlog.Chat)
			c.Sig = c.Sig[:rng.IntN(len(c.Sig))]
			return c
		}},
		{"empty name", func(m, _ eventlog.Signed) eventlog.Signed {
			c := m.(eventlog.Chat)
			c.Name = ""
			return c
		}},
	}
	for round := range 40 {
		size := 1 + rng.IntN(600)
		if round < 4 {
			size = []int{1, 3, 64, 512}[round]
		}
		ms := make([]eventlog.Signed, size)
		for i := range ms {
			key, name := alice, "Alice"
			if i%3 == 1 {
				key, name = bob, "Bob"
			}
			if i%7 == 5 {
				n := eventlog.Nick{OriginSeq: uint64(i + 1), OriginTime: time.Unix(1_780_000_000, int64(i)), Name: name}
				n.Sign(key)
				ms[i] = n
				continue
			}
			ms[i] = signedChat(key, name, uint64(i+1), fmt.Sprintf("line %d", i))
		}
		bad := map[int]string{}
		for range rng.IntN(4) {
			i := rng.IntN(size)
			if _, ok := ms[i].(eventlog.Chat); !ok || bad[i] != "" {
				continue
			}
			other := signedChat(alice, "Alice", uint64(size+1+i), "another line")
			s := spoil[rng.IntN(len(spoil))]
			ms[i] = s.do(ms[i], other)
			bad[i] = s.name
		}
		errs := eventlog.VerifyBatch(ms)
		if len(errs) != size {
			t.Fatalf("round %d: %d errors for %d messages", round, len(errs), size)
		}
		for i, m := range ms {
			want := eventlog.VerifySigned(m)
			if (want == nil) != (bad[i] == "") {
				t.Fatalf("round %d: message %d (%s) alone: %v", round, i, bad[i], want)
			}
			if fmt.Sprint(errs[i]) != fmt.Sprint(want) {
				t.Fatalf("round %d, size %d: message %d (%s) in a batch: %v, alone: %v", round, size, i, bad[i], errs[i], want)
			}
		}
	}
}

// One bad signature among many good ones is the only one refused.
func TestOneBadSignatureAmongFiveHundredIsRefusedAlone(t *testing.T) {
	alice := originKey("alice")
	ms := make([]eventlog.Signed, 512)
	for i := range ms {
		ms[i] = signedChat(alice, "Alice", uint64(i+1), fmt.Sprintf("line %d", i))
	}
	c := ms[300].(eventlog.Chat)
	c.Text = "altered on the way"
	ms[300] = c
	for i, err := range eventlog.VerifyBatch(ms) {
		if i == 300 {
			if !errors.Is(err, eventlog.ErrBadSignature) {
				t.Errorf("the altered line: %v, want %v", err, eventlog.ErrBadSignature)
			}
		} else if err != nil {
			t.Errorf("good line %d refused: %v", i, err)
		}
	}
}
