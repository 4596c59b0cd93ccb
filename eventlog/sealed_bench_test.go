package eventlog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// BenchmarkPrivateMessageCost measures what a private message costs each
// role in CPU, against a chat line of the same text signed and verified in
// the same run: the sender seals twice and signs, every node verifies the
// signature, and the recipient also opens the box.
func BenchmarkPrivateMessageCost(b *testing.B) {
	alice, bob := originKey("alice"), originKey("bob")
	text := strings.Repeat("x", 100)
	var chatPerOp time.Duration
	b.Run("chat_sign_verify", func(b *testing.B) {
		for b.Loop() {
			c := eventlog.Chat{OriginSeq: 1, OriginTime: chatEpoch, Name: "Alice", Text: text}
			c.Sign(alice)
			if err := c.Verify(); err != nil {
				b.Fatal(err)
			}
		}
		chatPerOp = b.Elapsed() / time.Duration(b.N)
	})
	ratio := func(b *testing.B) {
		if chatPerOp > 0 {
			b.ReportMetric(float64(b.Elapsed()/time.Duration(b.N))/float64(chatPerOp), "x_chat")
		}
	}
	sealed := func() eventlog.Sealed {
		s, err := eventlog.NewSealed(alice, idOf(bob), "Alice", text)
		if err != nil {
			b.Fatal(err)
		}
		s.OriginSeq, s.OriginTime = 1, chatEpoch
		s.Sign(alice)
		return s
	}
	b.Run("seal_sign_verify", func(b *testing.B) {
		for b.Loop() {
			if err := sealed().Verify(); err != nil {
				b.Fatal(err)
			}
		}
		ratio(b)
	})
	s := sealed()
	b.Run("relay_verify", func(b *testing.B) {
		for b.Loop() {
			if err := s.Verify(); err != nil {
				b.Fatal(err)
			}
		}
		ratio(b)
	})
	b.Run("recipient_verify_open", func(b *testing.B) {
		for b.Loop() {
			if err := s.Verify(); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Open(bob); err != nil {
				b.Fatal(err)
			}
		}
		ratio(b)
	})
}
