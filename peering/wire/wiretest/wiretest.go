// Package wiretest makes the fixed keys and signed lines that the tests of
// the wire format and of the peering package build their frames from.
package wiretest

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Key returns a fixed key per seed, so that fuzz seeds stay the same from
// run to run.
func Key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// ID is the node ID of Key(seed).
func ID(seed byte) eventlog.NodeID {
	id, err := eventlog.IDFromKey(Key(seed).Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	return id
}

// Chat returns a line signed by Key(1).
func Chat(tb testing.TB, text string) eventlog.Chat {
	tb.Helper()
	c := eventlog.Chat{
		OriginSeq:  42,
		OriginTime: time.Unix(1_700_000_000, 123_456_789),
		Name:       "Alice",
		Text:       text,
	}
	c.Sign(Key(1))
	if err := c.Verify(); err != nil {
		tb.Fatalf("fresh chat does not verify: %v", err)
	}
	return c
}
