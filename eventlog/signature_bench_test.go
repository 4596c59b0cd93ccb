package eventlog

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerifyBatch checks the signatures of 512 chat lines, the
// largest batch a connection ingests at once, four ways that take turns
// in every round, so that a change of load on a shared machine hits all
// alike: one by one with crypto/ed25519 (the baseline, how every line was
// checked before), one by one by the rules of ZIP 215, as one batch on
// one core, and as VerifyBatch does it, in batches over every core.
func BenchmarkVerifyBatch(b *testing.B) {
	const n = 512
	keys := make([]ed25519.PrivateKey, 4)
	for i := range keys {
		_, keys[i], _ = ed25519.GenerateKey(nil)
	}
	ms := make([]Signed, n)
	at := time.Date(2026, 2, 1, 9, 30, 0, 0, time.UTC)
	for i := range ms {
		c := Chat{OriginSeq: uint64(i/len(keys) + 1), OriginTime: at.Add(time.Duration(i) * time.Second), Name: "Alice",
			Text: fmt.Sprintf("line %d: the quick brown fox jumps over the lazy dog", i)}
		c.Sign(keys[i%len(keys)])
		ms[i] = c
	}
	ways := []struct {
		name  string
		check func() bool
	}{
		{"crypto_ed25519", func() bool {
			for _, m := range ms {
				s := m.signature()
				if !ed25519.Verify(s.origin.PublicKey(), s.msg, s.sig) {
					return false
				}
			}
			return true
		}},
		{"zip215_one_by_one", func() bool {
			for _, m := range ms {
				if VerifySigned(m) != nil {
					return false
				}
			}
			return true
		}},
		{"batch_one_core", func() bool {
			errs := make([]error, n)
			verifyPart(ms, errs)
			return allNil(errs)
		}},
		{"batch_all_cores", func() bool { return allNil(VerifyBatch(ms)) }},
	}
	took := make([]time.Duration, len(ways))
	for b.Loop() {
		for i, w := range ways {
			start := time.Now()
			if !w.check() {
				b.Fatalf("%s refused a good line", w.name)
			}
			took[i] += time.Since(start)
		}
	}
	for i, w := range ways {
		b.ReportMetric(float64(b.N*n)/took[i].Seconds(), w.name+"_msgs/s")
		if i > 0 {
			b.ReportMetric(took[0].Seconds()/took[i].Seconds(), "x_"+w.name)
		}
	}
}

func allNil(errs []error) bool {
	for _, err := range errs {
		if err != nil {
			return false
		}
	}
	return true
}
